import { expect, test } from '@playwright/test';
import { chartSettled, createDashboard, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { from, signIn } from './support/session';

test('a KPI tile past its threshold says so in words and colour, light and dark, on pages already open, and its alert toasts', async ({
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

    // The centre has its history: the alert raised from now on is new, and toasts.
    await expect(page.getByRole('button', { name: /^Notifications/ })).toHaveAttribute('data-offset', /^\d+$/);
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 20 } })).toBe(200);
    await expect(tile).toHaveAttribute('data-state', 'critical');
    await expect(tile.locator('.kpi-state')).toHaveText('✖ Critical · below 30');
    // The server raised an alert: it toasts in this viewer's page, and is in the widget's history.
    await expect(page.getByRole('alert').filter({ hasText: 'Throughput: orders is critical at 20 (below 30)' })).toBeVisible();
    const history = await (await page.request.get(`${server.url}/api/dashboards/${id}/widgets/${widget}/alerts`)).json();
    expect(history.map((a: { from: string; to: string; value: number }) => [a.from, a.to, a.value])).toEqual([['ok', 'critical', 20]]);
    // The viewer reads it under the tile too.
    const slot = page.locator('.widget-slot', { has: tiles });
    await slot.getByText('Alert history').click();
    await expect(slot.locator('.alert-line')).toHaveText([/^\d\d:\d\d:\d\d · orders critical at 20 \(was ok\)$/]);
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

test('a chart draws its bounds, colours the points past them and says its state in words', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [
      { title: 'Orders per second', kind: 'line_chart', topic: 'e2e/orders' },
      { title: 'Refunds', kind: 'bar_chart', topic: 'e2e/refunds' },
    ]);
    for (const value of [60, 55, 48]) {
      expect(await server.publish('acme', 'e2e/orders', { points: [{ value }] })).toBe(200);
    }
    expect(await server.publish('acme', 'e2e/refunds', { points: [{ value: 2 }, { value: 9 }] })).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    const line = widgetOf(page, 'e2e/orders');
    await expect(line).toHaveAttribute('data-points', '3');
    await expect(line.locator('.chart-thresholds')).toHaveCount(0);

    // The editor has one row for a chart, without a key.
    await page.getByRole('button', { name: 'Edit dashboard' }).click();
    const slot = page.locator('.widget-slot', { has: line });
    await slot.getByText('Thresholds: none').click();
    const form = page.getByRole('form', { name: 'Thresholds of Orders per second' });
    await form.getByRole('button', { name: 'Add a threshold' }).click();
    await expect(form.getByRole('button', { name: 'Add a threshold' })).toBeDisabled();
    await expect(form.getByLabel('Key')).toHaveCount(0);
    await form.getByLabel('Bad when').selectOption('below');
    await form.getByLabel('Warning').fill('50');
    await form.getByLabel('Critical').fill('30');
    await form.getByRole('button', { name: 'Save thresholds' }).click();
    await expect(form.getByText('Saved')).toBeVisible();
    await expect(slot.locator('.thresholds-editor summary')).toHaveText('Thresholds: series');

    // The words under the chart: the bounds, and the latest point's state.
    const said = line.locator('.chart-thresholds');
    await expect(said.locator('.chart-legend')).toHaveText('Warning below 50 · Critical below 30');
    await expect(said).toHaveAttribute('data-state', 'warning');
    await expect(said.locator('.chart-state')).toHaveText('⚠ Warning · below 50');
    // The chart itself: a dashed line per bound, and the points coloured by the band they fall in.
    const drawn = () =>
      page.evaluate(() => {
        const el = document.querySelector('section[data-topic="e2e/orders"] .chart');
        const option = (window as any).echarts.getInstanceByDom(el).getOption();
        return {
          bounds: option.series.slice(1).map((s: any) => [s.name, s.markLine.data[0].yAxis]),
          pieces: option.visualMap[0].pieces.map((p: any) => [p.lt ?? null, p.gte ?? null, p.color]),
          axis: [option.yAxis[0].min, option.yAxis[0].max],
        };
      });
    await expect.poll(async () => (await drawn()).bounds).toEqual([
      ['Warning', 50],
      ['Critical', 30],
    ]);
    const { pieces, axis } = await drawn();
    expect(pieces).toEqual([
      [30, null, '#d1343e'],
      [50, 30, '#c98a00'],
      [null, 50, '#5470c6'],
    ]);
    expect(axis[0]).toBeLessThan(30);
    expect(axis[1]).toBeGreaterThan(60);

    expect(await server.publish('acme', 'e2e/orders', { points: [{ value: 20 }] })).toBe(200);
    await expect(said).toHaveAttribute('data-state', 'critical');
    await expect(said.locator('.chart-state')).toHaveText('✖ Critical · below 30');
    await page.getByRole('button', { name: 'Done editing' }).click();
    await chartSettled(page, 'e2e/orders');
    await page.screenshot({ path: 'artifacts/thresholds-chart.png' });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.reload();
    await expect(widgetOf(page, 'e2e/orders').locator('.chart-thresholds')).toHaveAttribute('data-state', 'critical');
    await expect
      .poll(async () => (await drawn()).pieces.map((p: unknown[]) => p[2]))
      .toEqual(['#ff6b74', '#f2b53a', '#4992ff']);
    await chartSettled(page, 'e2e/orders');
    await page.screenshot({ path: 'artifacts/thresholds-chart-dark.png' });

    // Back past the bound: fine again, in words too.
    expect(await server.publish('acme', 'e2e/orders', { points: [{ value: 70 }] })).toBe(200);
    await expect(widgetOf(page, 'e2e/orders').locator('.chart-thresholds')).toHaveAttribute('data-state', 'ok');
    await expect(widgetOf(page, 'e2e/orders').locator('.chart-state')).toHaveCount(0);
  } finally {
    await server.stop();
  }
});
