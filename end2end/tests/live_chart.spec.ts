import { expect, test, type Page } from '@playwright/test';
import { signIn } from './support/session';

/// What the page's ECharts instance holds, read together with the widget's count of applied live
/// updates (one evaluate runs in one browser task), once the chart has drawn what the widget holds
/// (it draws at most once per animation frame).
async function chartState(page: Page, topic: string) {
  let state = await readChart(page, topic);
  await expect
    .poll(async () => (state = await readChart(page, topic)) !== null && state.points === state.shown, {
      message: 'the chart draws what the widget holds',
    })
    .toBe(true);
  return state;
}

async function readChart(page: Page, topic: string) {
  return page.evaluate((topic) => {
    const widget = document.querySelector(`[data-topic="${topic}"]`)!;
    const el = widget.querySelector('.chart') as HTMLElement | null;
    // `echarts` is the global the classic script defines.
    const chart = el && (window as any).echarts.getInstanceByDom(el);
    if (!chart) return null;
    const data = chart.getOption().series[0].data as [number, number][];
    return {
      id: chart.id as string,
      points: data.length,
      updates: Number(widget.getAttribute('data-updates')),
      shown: Number(widget.getAttribute('data-points')),
      canvases: el.querySelectorAll('canvas').length,
    };
  }, topic);
}

/// Waits until the chart has finished animating an update (or 2 s), so screenshots are crisp.
async function chartSettled(page: Page, topic: string) {
  await page.evaluate(
    (topic) =>
      new Promise<void>((resolve) => {
        const chart = (window as any).echarts.getInstanceByDom(document.querySelector(`[data-topic="${topic}"] .chart`));
        chart.on('finished', () => resolve());
        setTimeout(resolve, 2000);
      }),
    topic,
  );
}

test('the orders chart goes live and appends demo-feed points without re-creating the chart', async ({ page }, testInfo) => {
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));

  await signIn(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Orders per second' })).toBeVisible();

  const pill = page.getByRole('status');
  await expect(pill).toHaveAttribute('data-status', 'live');
  await expect(pill).toHaveText('Live');

  const widget = page.locator('[data-topic="sales/orders"]');
  // The server answered the subscription with a snapshot (its offset becomes visible) ...
  await expect(widget).toHaveAttribute('data-offset', /^\d+$/);
  const first = await chartState(page, 'sales/orders');
  expect(first).not.toBeNull();

  // ... then the demo feed's live points arrive, one per second: wait for three more.
  await expect
    .poll(async () => (await chartState(page, 'sales/orders'))!.updates - first!.updates, { timeout: 15_000 })
    .toBeGreaterThanOrEqual(3);
  const later = await chartState(page, 'sales/orders');
  expect(later!.id, 'the same ECharts instance: merged, not re-created').toBe(first!.id);
  expect(later!.canvases).toBe(1);
  const window = 120; // points a chart keeps
  expect(later!.points, 'each live update added one point').toBe(
    Math.min(window, first!.points + (later!.updates - first!.updates)),
  );
  expect(later!.shown, 'the widget reports what the chart holds').toBe(later!.points);

  await chartSettled(page, 'sales/orders');
  const shot = await page.screenshot({ path: 'artifacts/dashboard-light.png', fullPage: true });
  await testInfo.attach('dashboard (light)', { body: shot, contentType: 'image/png' });
  expect(consoleErrors).toEqual([]);
});

test('the dashboard follows a dark system theme', async ({ page }, testInfo) => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await signIn(page);
  await page.goto('/');
  const widget = page.locator('[data-topic="sales/orders"]');
  await expect(widget).toHaveAttribute('data-updates', /^([3-9]|[1-9]\d+)$/);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe('rgb(15, 20, 27)');
  await chartSettled(page, 'sales/orders');
  const shot = await page.screenshot({ path: 'artifacts/dashboard-dark.png', fullPage: true });
  await testInfo.attach('dashboard (dark)', { body: shot, contentType: 'image/png' });
});
