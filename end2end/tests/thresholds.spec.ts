import { expect, test } from '@playwright/test';
import { createDashboard, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { from, signIn } from './support/session';

test('a KPI tile past its threshold says so in words and colour, light and dark, on pages already open', async ({
  page,
  browser,
}) => {
  const server = await OwnServer.create();
  await server.start();
  const adminContext = await browser.newContext();
  try {
    const admin = await adminContext.newPage();
    await signIn(admin, 'ops@acme.test', server.url);
    const id = await createDashboard(admin, server.url, 'Floor', [{ title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' }]);
    const widget = (await (await admin.request.get(`${server.url}/api/dashboards/${id}`)).json()).widgets[0].id;
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 40, returns: 3 } })).toBe(200);
    await signIn(page, 'viewer@acme.test', server.url);
    await page.goto(`${server.url}/d/${id}`);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    const tiles = widgetOf(page, 'e2e/kpi');
    const tile = tiles.locator('.kpi[data-key="orders"]');
    await expect(tile).toHaveAttribute('data-state', 'ok');
    await expect(tile.locator('.kpi-state')).toHaveCount(0);

    // An admin sets the threshold elsewhere: the page already open follows.
    const orders = { key: 'orders', direction: 'below', warning: 50, critical: 30 };
    const saved = await admin.request.put(`${server.url}/api/dashboards/${id}/widgets/${widget}/thresholds`, {
      data: [orders],
      headers: from(server.url),
    });
    expect(saved.status()).toBe(200);
    await expect(tile).toHaveAttribute('data-state', 'warning');
    await expect(tile.locator('.kpi-state')).toHaveText('⚠ Warning · below 50');

    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 20 } })).toBe(200);
    await expect(tile).toHaveAttribute('data-state', 'critical');
    await expect(tile.locator('.kpi-state')).toHaveText('✖ Critical · below 30');
    // A key without a threshold has no state.
    await expect(tiles.locator('.kpi[data-key="returns"]')).toHaveAttribute('data-state', 'ok');
    await expect(tile).not.toHaveClass(/kpi-flash/);
    await page.screenshot({ path: 'artifacts/thresholds-light.png' });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: 'artifacts/thresholds-dark.png' });

    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 55 } })).toBe(200);
    await expect(tile).toHaveAttribute('data-state', 'ok');
  } finally {
    await adminContext.close();
    await server.stop();
  }
});

test('an admin sets a tile’s threshold in the editor and it applies at once', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [{ title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' }]);
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 40 } })).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    const tile = widgetOf(page, 'e2e/kpi').locator('.kpi[data-key="orders"]');
    await expect(tile).toHaveAttribute('data-state', 'ok');
    await page.getByRole('button', { name: 'Edit dashboard' }).click();
    await page.getByText('Thresholds: none').click();
    const form = page.getByRole('form', { name: 'Thresholds of Throughput' });
    await form.getByRole('button', { name: 'Add a threshold' }).click();
    await form.getByLabel('Key').fill('orders');
    await form.getByLabel('Bad when').selectOption('below');
    // Bounds the wrong way round are refused in the form, naming the row.
    await form.getByLabel('Warning').fill('30');
    await form.getByLabel('Critical').fill('50');
    await form.getByRole('button', { name: 'Save thresholds' }).click();
    await expect(form.getByRole('alert')).toHaveText('row 1: bad when below: the critical bound is below the warning bound');
    await form.getByLabel('Warning').fill('50');
    await form.getByLabel('Critical').fill('30');
    await form.getByRole('button', { name: 'Save thresholds' }).click();
    await expect(form.getByText('Saved')).toBeVisible();
    await expect(page.locator('.thresholds-editor summary')).toHaveText('Thresholds: orders');
    await expect(tile).toHaveAttribute('data-state', 'warning');
    await expect(tile.locator('.kpi-state')).toHaveText('⚠ Warning · below 50');
    await page.screenshot({ path: 'artifacts/thresholds-editor.png', fullPage: true });
  } finally {
    await server.stop();
  }
});
