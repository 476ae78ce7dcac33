import { expect, type Page } from '@playwright/test';
import { from } from './session';

export type WidgetSpec = { title: string; kind: string; topic: string; defaultMode?: string };

/// Creates a dashboard with these widgets through the API as the signed-in admin; returns its id.
export async function createDashboard(page: Page, origin: string, title: string, widgets: WidgetSpec[]) {
  const created = await page.request.post(`${origin}/api/dashboards`, { data: { title }, headers: from(origin) });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  for (const widget of widgets) {
    const added = await page.request.post(`${origin}/api/dashboards/${id}/widgets`, { data: widget, headers: from(origin) });
    expect(added.status()).toBe(201);
  }
  return id as number;
}

/// Makes a wall display through the API as the signed-in admin; returns its id and its link (a
/// path with the secret in its fragment: `/display/3#…`).
export async function createDisplay(
  page: Page,
  origin: string,
  display: { name: string; dashboards: number[]; rotateSecs?: number; theme?: string },
): Promise<{ id: number; link: string }> {
  const made = await page.request.post(`${origin}/api/admin/displays`, { data: display, headers: from(origin) });
  expect(made.status()).toBe(201);
  const body = await made.json();
  return { id: body.display.id, link: body.link };
}

/// The widget that shows `topic`.
export const widgetOf = (page: Page, topic: string) => page.locator(`section[data-topic="${topic}"]`);

/// The values the ECharts chart of `topic` holds right now, oldest first.
export async function chartValues(page: Page, topic: string): Promise<number[]> {
  return page.evaluate((topic) => {
    const el = document.querySelector(`section[data-topic="${topic}"] .chart`);
    const chart = el && (window as any).echarts.getInstanceByDom(el);
    if (!chart) return [];
    // A line holds [time, value] pairs; bars hold values (their times are the category axis).
    return ((chart.getOption().series[0].data ?? []) as ([number, number] | number)[]).map((d) => (typeof d === 'number' ? d : d[1]));
  }, topic);
}

/// Waits until the chart of `topic` has finished drawing what it holds (its animations included):
/// for a screenshot that shows the chart as a user sees it once it is still.
export async function chartSettled(page: Page, topic: string) {
  await page.evaluate(
    (topic) =>
      new Promise<void>((resolve) => {
        const el = document.querySelector(`section[data-topic="${topic}"] .chart`);
        const chart = (window as any).echarts.getInstanceByDom(el);
        chart.on('finished', () => resolve());
        // Nothing left to draw: 'finished' comes after this forced render.
        chart.resize();
      }),
    topic,
  );
}

/// What the widget of `topic` has applied, read in one task of the page so that no update lands
/// between the values: its offset, counters, and the timestamps its line chart holds. A chart draws
/// at most once per animation frame, so this reads again until the chart shows what the widget
/// holds.
export async function widgetState(page: Page, topic: string) {
  let state = await readWidget(page, topic);
  await expect
    .poll(async () => (state = await readWidget(page, topic)).times.length === state.points, {
      message: 'the chart draws what the widget holds',
    })
    .toBe(true);
  return state;
}

async function readWidget(page: Page, topic: string) {
  return page.evaluate((topic) => {
    const widget = document.querySelector(`[data-topic="${topic}"]`)!;
    const n = (name: string) => Number(widget.getAttribute(name));
    const el = widget.querySelector('.chart');
    const chart = el && (window as any).echarts.getInstanceByDom(el);
    const data = (chart?.getOption().series[0].data ?? []) as [number, number][];
    return {
      offset: n('data-offset'),
      points: n('data-points'),
      updates: n('data-updates'),
      gaps: n('data-gaps'),
      times: data.map(([ts]) => ts),
    };
  }, topic);
}
