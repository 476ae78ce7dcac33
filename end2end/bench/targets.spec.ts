import { expect, test } from '@playwright/test';
import { expectLiveAgain } from '../tests/support/pill';
import { CuttableProxy } from '../tests/support/proxy';
import { percentile, RATE, RenderLoad } from '../tests/support/render_load';
import { OwnServer } from '../tests/support/server';
import { signIn } from '../tests/support/session';

/// The product's success figures in the browser, each checked against its target and printed as
/// one `PASS` or `FAIL` line (`scripts/bench targets` runs these beside `loadgen targets` and fails
/// if any line says FAIL). The tests themselves pass whatever the figure: every target is printed
/// even when an earlier one is missed.
const RUNS = 5;

function verdict(name: string, measured: number, limit: number, unit = 'ms') {
  const word = measured < limit ? 'PASS' : 'FAIL';
  const shown = measured < 10 ? measured.toFixed(1) : Math.round(measured);
  console.log(`${word} ${name}: ${shown} ${unit} (target < ${limit} ${unit})`);
}

test('target: a dashboard is live within 1 s of opening it', async ({ browser }) => {
  const server = await OwnServer.create();
  await server.start();
  const context = await browser.newContext();
  try {
    // When the pill first says Live, in ms since the navigation began, noted by the page itself.
    await context.addInitScript(() => {
      const note = () => {
        if (!(window as any).__liveAt && document.querySelector('[role="status"][data-status="live"]')) {
          (window as any).__liveAt = performance.now();
        }
      };
      new MutationObserver(note).observe(document, { subtree: true, childList: true, attributes: true });
    });
    const page = await context.newPage();
    await signIn(page, 'ops@acme.test', server.url);
    await page.goto(server.url); // the first visit fills the browser's cache, as it would a user's
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    const took: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const fresh = await context.newPage();
      await fresh.goto(server.url);
      await expect(fresh.getByRole('status')).toHaveAttribute('data-status', 'live');
      took.push(await fresh.evaluate(() => (window as any).__liveAt as number));
      await fresh.close();
    }
    console.log(`figures: opening → Live ${took.map(Math.round).join(', ')} ms`);
    verdict(`browser connect, worst of ${RUNS} (open → Live)`, Math.max(...took), 1000);
  } finally {
    await context.close();
    await server.stop();
  }
});

test('target: updates reach the charts within 100 ms (p95) under the render load', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const load = await RenderLoad.open(page, server);
    await load.publishFor(15, 1); // until every chart holds its full window
    const from = 1 + 15 * RATE;
    const last = await load.publishFor(30, from);
    await load.settled(last);
    const { latencies, missing } = await load.latencies(from);
    console.log(`figures: publish → chart p50 ${percentile(latencies, 0.5)} ms over ${latencies.length} points, ${missing} missing`);
    verdict('browser update latency p95 (10 charts × 10 updates/s)', percentile(latencies, 0.95), 100);
    verdict('browser updates never drawn', missing, 1, 'points');
  } finally {
    await server.stop();
  }
});

test('target: a dropped connection is live again within 5 s', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  const proxy = await CuttableProxy.create(server.port);
  try {
    await page.addInitScript(() => {
      (window as any).__restored = [];
      window.addEventListener('connection:restored', (e) =>
        (window as any).__restored.push((e as CustomEvent).detail.downtimeMs as number),
      );
    });
    await signIn(page, 'ops@acme.test', proxy.url);
    await page.goto(proxy.url);
    await expectLiveAgain(page);
    for (let run = 1; run <= RUNS; run++) {
      // The connection drops; the network and the server are there at once (a blip, a restart of a
      // proxy): what is measured is the client's own way back.
      await proxy.cut();
      await proxy.restore();
      await expect(page.getByRole('status')).not.toHaveAttribute('data-status', 'live');
      await expectLiveAgain(page);
      await expect.poll(() => page.evaluate(() => (window as any).__restored.length)).toBe(run);
    }
    const downtimes: number[] = await page.evaluate(() => (window as any).__restored);
    console.log(`figures: lost → restored ${downtimes.join(', ')} ms`);
    verdict(`browser connection recovery, worst of ${RUNS}`, Math.max(...downtimes), 5000);
  } finally {
    await proxy.cut();
    await server.stop();
  }
});

test('target: the demo dashboard costs the browser under 5 % of a core and 20 MB of heap over 60 s', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    await page.goto(server.url);
    await expectLiveAgain(page);
    await expect(page.locator('[data-topic="sales/orders"]')).toHaveAttribute('data-offset', /^\d+$/);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable', { timeDomain: 'timeTicks' });
    // Chromium's own account of the page: the main thread's busy time (TaskDuration, seconds) at a
    // moment (Timestamp, seconds), and the JS heap in use after a full collection.
    const sample = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const { usedSize } = await cdp.send('Runtime.getHeapUsage');
      const { metrics } = await cdp.send('Performance.getMetrics');
      const metric = (name: string) => metrics.find((m) => m.name === name)!.value;
      return { busy: metric('TaskDuration'), at: metric('Timestamp'), heap: usedSize };
    };
    const before = await sample();
    await page.waitForTimeout(60_000); // the measurement itself: a minute of watching
    const after = await sample();
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    const cpu = (100 * (after.busy - before.busy)) / (after.at - before.at);
    const growth = (after.heap - before.heap) / 1e6;
    console.log(
      `figures: demo dashboard for ${Math.round(after.at - before.at)} s: main thread busy ` +
        `${((after.busy - before.busy) * 1000).toFixed(0)} ms (${cpu.toFixed(2)} %), JS heap ` +
        `${(before.heap / 1e6).toFixed(2)} → ${(after.heap / 1e6).toFixed(2)} MB`,
    );
    verdict('browser CPU on the demo dashboard (main thread busy over wall time)', cpu, 5, '%');
    verdict('browser JS heap growth on the demo dashboard over 60 s', growth, 20, 'MB');
  } finally {
    await server.stop();
  }
});
