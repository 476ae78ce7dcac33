import { expect, type Page } from '@playwright/test';

export type WidgetSpec = { title: string; kind: string; topic: string; defaultMode?: string };

/// Creates a dashboard with these widgets through the API as the signed-in admin; returns its id.
export async function createDashboard(page: Page, origin: string, title: string, widgets: WidgetSpec[]) {
  const created = await page.request.post(`${origin}/api/dashboards`, { data: { title } });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  for (const widget of widgets) {
    const added = await page.request.post(`${origin}/api/dashboards/${id}/widgets`, { data: widget });
    expect(added.status()).toBe(201);
  }
  return id as number;
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
