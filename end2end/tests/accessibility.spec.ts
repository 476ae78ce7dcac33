import { expect, test, type Page } from '@playwright/test';
import { createDashboard, createDisplay, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { from, signIn } from './support/session';

/// axe-core from the project's npm packages (package.json), never from a CDN.
const axePath = require.resolve('axe-core/axe.min.js');

/// What axe-core (injected into the page) finds against WCAG 2.1 A and AA, one line per element.
async function violations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: axePath });
  const found = await page.evaluate(async () => {
    const results = await (window as any).axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return results.violations.flatMap((v: any) =>
      v.nodes.map((n: any) => `${v.id}: ${n.target.join(' ')} — ${n.failureSummary.replace(/\s+/g, ' ')}`),
    );
  });
  return found;
}

async function audit(page: Page, what: string) {
  const found = await violations(page);
  // Soft: one run reports every page's findings, not only the first page's.
  expect.soft(found, `${what}:\n${found.join('\n')}`).toEqual([]);
}

test('every page has no accessibility violations, light and dark: sign-in, dashboard, editor, alerts, display', async ({
  page,
  browser,
}) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await page.goto(`${server.url}/login`);
    await expect(page.getByRole('button', { name: 'Sign in' })).toBeEnabled();
    await audit(page, 'sign-in, light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await audit(page, 'sign-in, dark');
    await page.emulateMedia({ colorScheme: 'light' });

    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [
      { title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' },
      { title: 'Orders per second', kind: 'line_chart', topic: 'e2e/orders' },
      { title: 'Jobs', kind: 'job_panel', topic: 'e2e/jobs' },
    ]);
    const widget = (await (await page.request.get(`${server.url}/api/dashboards/${id}`)).json()).widgets[0].id;
    const below = [{ key: 'orders', direction: 'below', warning: 50, critical: 30 }];
    const saved = await page.request.put(`${server.url}/api/dashboards/${id}/widgets/${widget}/thresholds`, {
      data: below,
      headers: from(server.url),
    });
    expect(saved.status()).toBe(200);

    // The demo's dashboard (every kind of widget, live), then one past its thresholds.
    await page.goto(server.url);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    await expect(widgetOf(page, 'sales/orders')).toHaveAttribute('data-offset', /^\d+$/);
    await audit(page, 'dashboard, light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await audit(page, 'dashboard, dark');
    await page.emulateMedia({ colorScheme: 'light' });

    await page.goto(`${server.url}/d/${id}`);
    await expect(page.getByRole('button', { name: /^Notifications/ })).toHaveAttribute('data-offset', /^\d+$/);
    for (const orders of [40, 20]) expect(await server.publish('acme', 'e2e/kpi', { values: { orders } })).toBe(200);
    expect(await server.publish('acme', 'e2e/orders', { points: [{ value: 3 }] })).toBe(200);
    await expect(widgetOf(page, 'e2e/kpi').locator('.kpi[data-key="orders"]')).toHaveAttribute('data-state', 'critical');
    // One job in each status on screen, so every status tint's text is checked (the demo's jobs vary).
    const jobs = ['running', 'succeeded', 'failed'].map((status, i) => ({
      type: 'job',
      level: status === 'failed' ? 'error' : 'info',
      title: `Export ${status}`,
      body: status,
      data: { jobId: `a11y-${i}`, status, progress: status === 'running' ? 40 : 100 },
    }));
    expect(await server.publish('acme', 'e2e/jobs', { events: jobs })).toBe(200);
    for (const status of ['running', 'succeeded', 'failed'])
      await expect(widgetOf(page, 'e2e/jobs').locator(`li.job[data-status="${status}"]`)).toHaveCount(1);
    // The alerts: a toast, the centre with them, the widget's history.
    await expect(page.getByRole('alert').filter({ hasText: 'is critical at 20' })).toBeVisible();
    await page.getByText('Alert history').click();
    await expect(page.locator('.alert-line')).toHaveCount(2); // warning at 40, then critical at 20
    await page.getByRole('button', { name: /^Notifications/ }).click();
    await expect(page.getByRole('dialog', { name: 'Notifications' })).toBeVisible();
    await audit(page, 'alerts, light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await audit(page, 'alerts, dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.keyboard.press('Escape');

    await page.getByRole('button', { name: 'Edit dashboard' }).click();
    await page.getByText(/^Wall displays/).click();
    await page.getByText('Thresholds: orders').click();
    await audit(page, 'editor, light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await audit(page, 'editor, dark');

    const made = await createDisplay(page, server.url, { name: 'Wall', dashboards: [id] });
    const link = `${server.url}${made.link}`;
    for (const theme of ['dark', 'light']) {
      const wall = await (await browser.newContext({ viewport: { width: 1600, height: 900 } })).newPage();
      await wall.goto(link);
      await expect(wall.locator('.display-screen')).toHaveAttribute('data-status', 'live');
      await wall.evaluate((t) => document.documentElement.setAttribute('data-theme', t), theme);
      await audit(wall, `display, ${theme}`);
    }
  } finally {
    await server.stop();
  }
});
