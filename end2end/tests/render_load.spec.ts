import { expect, test } from '@playwright/test';
import { percentile, RATE, RenderLoad, WIDGETS } from './support/render_load';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

// Ten charts, each fed 10 points a second, for LIVEDASH_RENDER_SECS (60 here and in CI; the long
// run in docs/benchmarks.md is 600). Prints publish→chart latency and what the page's memory did;
// fails only if the JS heap grows more than 5 MB (a leak), never on a time.
const SECS = Number(process.env.LIVEDASH_RENDER_SECS ?? 60);
// Until every chart holds its full window (120 points at 10 a second) and the page has settled.
const WARM_UP_SECS = 15;
const MAX_HEAP_GROWTH = 5 * 1024 * 1024;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

test('figures: ten charts at 10 updates a second: publish→chart latency, and the heap stays flat', async ({ page }) => {
  test.setTimeout((WARM_UP_SECS + SECS + 90) * 1000);
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const load = await RenderLoad.open(page, server);

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

    await load.publishFor(WARM_UP_SECS, 1);
    const before = await memory();
    const drawsBefore = await load.draws();
    const measuredFrom = 1 + WARM_UP_SECS * RATE;
    const last = await load.publishFor(SECS, measuredFrom);
    await load.settled(last);
    const after = await memory();
    const draws = (await load.draws()) - drawsBefore;
    const { latencies, missing } = await load.latencies(measuredFrom);
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
