import { expect, type Page } from '@playwright/test';
import { createDashboard } from './dashboard';
import type { OwnServer } from './server';

/// The render load: ten charts on one dashboard, each fed RATE points a second through the HTTP API,
/// with every chart's `setOption` wrapped to note when each value reaches it (so the page pays
/// nothing per frame for the measuring). Used by the render-load figures (tests/render_load.spec.ts)
/// and by the browser's update-latency target (bench/targets.spec.ts).
export const WIDGETS = 10;
export const RATE = 10;

export const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(xs.length * p) - 1)];

export class RenderLoad {
  private readonly sent = new Map<string, number>();
  private readonly publishes: Promise<number>[] = [];

  private constructor(
    private readonly page: Page,
    private readonly server: OwnServer,
    readonly topics: string[],
  ) {}

  /// Creates the dashboard, opens it (signed in already) and wraps its charts.
  static async open(page: Page, server: OwnServer): Promise<RenderLoad> {
    const topics = Array.from({ length: WIDGETS }, (_, i) => `test/render/${i}`);
    const id = await createDashboard(
      page,
      server.url,
      'Render load',
      topics.map((topic, i) => ({ title: `Chart ${i}`, kind: 'line_chart', topic })),
    );
    for (const topic of topics) expect(await server.publish('acme', topic, { points: [{ value: 0 }] })).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    await expect(page.locator('section[data-topic] .chart canvas')).toHaveCount(WIDGETS);
    await page.evaluate((topics) => {
      const seen: Record<string, number> = ((window as any).__seen = {});
      (window as any).__draws = 0;
      for (const topic of topics) {
        const el = document.querySelector(`section[data-topic="${topic}"] .chart`)!;
        const chart = (window as any).echarts.getInstanceByDom(el);
        const setOption = chart.setOption.bind(chart);
        chart.setOption = (option: any, ...rest: unknown[]) => {
          const now = Date.now();
          (window as any).__draws++;
          for (const point of option?.series?.[0]?.data ?? []) {
            const key = `${topic}#${point[1]}`;
            if (!(key in seen)) seen[key] = now;
          }
          return setOption(option, ...rest);
        };
      }
    }, topics);
    return new RenderLoad(page, server, topics);
  }

  /// RATE points a second on every topic for `secs`, spread evenly, each value its sequence from
  /// `first`; returns the last value sent.
  async publishFor(secs: number, first: number): Promise<number> {
    const start = Date.now();
    const total = secs * RATE * WIDGETS;
    for (let n = 0; n < total; n++) {
      const due = start + (n * 1000) / (RATE * WIDGETS);
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const topic = this.topics[n % WIDGETS];
      const value = first + Math.floor(n / WIDGETS);
      this.sent.set(`${topic}#${value}`, Date.now());
      this.publishes.push(this.server.publish('acme', topic, { points: [{ value }] }));
    }
    return first + secs * RATE - 1;
  }

  /// Waits until every publish was taken and every chart drew `last`.
  async settled(last: number): Promise<void> {
    expect((await Promise.all(this.publishes)).every((status) => status === 200)).toBe(true);
    await expect
      .poll(() =>
        this.page.evaluate((keys) => keys.every((k) => k in (window as any).__seen), this.topics.map((t) => `${t}#${last}`)),
      )
      .toBe(true);
  }

  draws(): Promise<number> {
    return this.page.evaluate(() => (window as any).__draws as number);
  }

  /// Publish → chart latency of every value from `from` on, and how many never reached a chart.
  async latencies(from: number): Promise<{ latencies: number[]; missing: number }> {
    const seen: Record<string, number> = await this.page.evaluate(() => (window as any).__seen);
    const latencies: number[] = [];
    let missing = 0;
    for (const [key, at] of this.sent) {
      if (Number(key.split('#')[1]) < from) continue;
      if (key in seen) latencies.push(seen[key] - at);
      else missing++;
    }
    return { latencies, missing };
  }
}
