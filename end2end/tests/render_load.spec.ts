import { expect, test } from '@playwright/test';
import { createDashboard } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

// Ten charts, each fed 10 points a second, for LIVEDASH_RENDER_SECS (60 here and in CI; the long
// run in docs/benchmarks.md is 600). Prints publish→chart latency and what the page's memory did;
// fails only if the JS heap grows more than 5 MB (a leak), never on a time.
const WIDGETS = 10;
const RATE = 10;
const SECS = Number(process.env.LIVEDASH_RENDER_SECS ?? 60);
// Until every chart holds its full window (120 points at 10 a second) and the page has settled.
const WARM_UP_SECS = 15;
const MAX_HEAP_GROWTH = 5 * 1024 * 1024;

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(xs.length * p) - 1)];
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

test('figures: ten charts at 10 updates a second: publish→chart latency, and the heap stays flat', async ({ page }) => {
  test.setTimeout((WARM_UP_SECS + SECS + 90) * 1000);
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
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

    // Notes when each value reaches a chart: every chart's setOption is wrapped, so the page pays
    // nothing per frame for the measuring.
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

    const cdp = await page.context().newCDPSession(page);
    await cdp.send('HeapProfiler.enable');
    const memory = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const { usedSize } = await cdp.send('Runtime.getHeapUsage');
      const wasm = await page.evaluate(async () => {
        const glue = document.querySelector<HTMLLinkElement>('link[rel="modulepreload"]')!.href;
        // The glue module the page loaded; initialising it again only returns its exports.
        const exports = await (await import(glue)).default();
        return exports.memory.buffer.byteLength as number;
      });
      return { heap: usedSize, wasm };
    };

    // The publisher: RATE points a second on every topic, spread evenly, each value its sequence.
    const sent = new Map<string, number>();
    const publishes: Promise<number>[] = [];
    const publishFor = async (secs: number, first: number) => {
      const start = Date.now();
      const total = secs * RATE * WIDGETS;
      for (let n = 0; n < total; n++) {
        const due = start + (n * 1000) / (RATE * WIDGETS);
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const topic = topics[n % WIDGETS];
        const value = first + Math.floor(n / WIDGETS);
        sent.set(`${topic}#${value}`, Date.now());
        publishes.push(server.publish('acme', topic, { points: [{ value }] }));
      }
    };

    await publishFor(WARM_UP_SECS, 1);
    const before = await memory();
    const drawsBefore = await page.evaluate(() => (window as any).__draws as number);
    const measuredFrom = 1 + WARM_UP_SECS * RATE;
    await publishFor(SECS, measuredFrom);
    const last = measuredFrom + SECS * RATE - 1;
    expect((await Promise.all(publishes)).every((status) => status === 200)).toBe(true);
    await expect
      .poll(() => page.evaluate((keys) => keys.every((k) => k in (window as any).__seen), topics.map((t) => `${t}#${last}`)))
      .toBe(true);
    const after = await memory();
    const draws = (await page.evaluate(() => (window as any).__draws as number)) - drawsBefore;

    const seen: Record<string, number> = await page.evaluate(() => (window as any).__seen);
    const latencies: number[] = [];
    let missing = 0;
    for (const [key, at] of sent) {
      const value = Number(key.split('#')[1]);
      if (value < measuredFrom) continue;
      if (key in seen) latencies.push(seen[key] - at);
      else missing++;
    }
    console.log(
      `figures: ${WIDGETS} charts × ${RATE} updates/s for ${SECS} s: publish→chart p50 ${percentile(latencies, 0.5)} ms, ` +
        `p95 ${percentile(latencies, 0.95)} ms, max ${Math.max(...latencies)} ms over ${latencies.length} points ` +
        `(${missing} never drawn); ${draws} draws for ${SECS * RATE * WIDGETS} updates; ` +
        `JS heap ${mb(before.heap)} → ${mb(after.heap)} (${mb(after.heap - before.heap)}), ` +
        `WASM memory ${mb(before.wasm)} → ${mb(after.wasm)}`,
    );
    expect(missing, 'every point reached its chart').toBe(0);
    expect(after.heap - before.heap, 'JS heap growth after garbage collection').toBeLessThanOrEqual(MAX_HEAP_GROWTH);
  } finally {
    await server.stop();
  }
});
