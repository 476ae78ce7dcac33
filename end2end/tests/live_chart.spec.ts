import { expect, test, type Page } from '@playwright/test';

/// What the page's ECharts instance holds right now.
async function chartState(page: Page, domId: string) {
  return page.evaluate((id) => {
    const el = document.getElementById(id);
    // `echarts` is the global the classic script defines.
    const chart = el && (window as any).echarts.getInstanceByDom(el);
    if (!chart) return null;
    const data = chart.getOption().series[0].data as [number, number][];
    return { id: chart.id as string, points: data.length, canvases: el.querySelectorAll('canvas').length };
  }, domId);
}

/// Resolves once the chart has finished animating its latest update, so screenshots are crisp.
async function chartSettled(page: Page, domId: string) {
  await page.evaluate(
    (id) =>
      new Promise<void>((resolve) => {
        const chart = (window as any).echarts.getInstanceByDom(document.getElementById(id));
        chart.on('finished', () => resolve());
      }),
    domId,
  );
}

test('the orders chart goes live and appends demo-feed points without re-creating the chart', async ({ page }, testInfo) => {
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));

  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Orders per second' })).toBeVisible();

  const pill = page.getByRole('status');
  await expect(pill).toHaveAttribute('data-status', 'live');
  await expect(pill).toHaveText('Live');

  const widget = page.locator('[data-widget-id="orders"]');
  // The server answered the subscription with a snapshot (its offset becomes visible) ...
  await expect(widget).toHaveAttribute('data-offset', /^\d+$/);
  const first = await chartState(page, 'chart-orders');
  expect(first).not.toBeNull();

  // ... then the demo feed's live points arrive, one per second.
  await expect(widget).toHaveAttribute('data-updates', /^([3-9]|[1-9]\d+)$/);
  const later = await chartState(page, 'chart-orders');
  expect(later!.id, 'the same ECharts instance: merged, not re-created').toBe(first!.id);
  expect(later!.canvases).toBe(1);
  expect(later!.points).toBeGreaterThanOrEqual(first!.points + 3);
  expect(Number(await widget.getAttribute('data-points'))).toBe(later!.points);

  await chartSettled(page, 'chart-orders');
  const shot = await page.screenshot({ path: 'artifacts/dashboard-light.png', fullPage: true });
  await testInfo.attach('dashboard (light)', { body: shot, contentType: 'image/png' });
  expect(consoleErrors).toEqual([]);
});

test('the dashboard follows a dark system theme', async ({ page }, testInfo) => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/');
  const widget = page.locator('[data-widget-id="orders"]');
  await expect(widget).toHaveAttribute('data-updates', /^([3-9]|[1-9]\d+)$/);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe('rgb(15, 20, 27)');
  await chartSettled(page, 'chart-orders');
  const shot = await page.screenshot({ path: 'artifacts/dashboard-dark.png', fullPage: true });
  await testInfo.attach('dashboard (dark)', { body: shot, contentType: 'image/png' });
});
