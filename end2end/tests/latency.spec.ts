import { expect, test, type Page } from '@playwright/test';
import { createDashboard } from './support/dashboard';
import { expectLiveAgain } from './support/pill';
import { FilteringProxy } from './support/proxy';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1];
const ms = (x: number) => `${Math.round(x)} ms`;

/// Publishes `count` points to `topic` one after the other and returns, for each, how long it took
/// from the publish request to the value being in the chart's own data. The page watches the
/// ECharts instance every frame and notes (same machine clock) when each value appears.
async function publishToChart(page: Page, server: OwnServer, topic: string, count: number): Promise<number[]> {
  await page.evaluate((topic) => {
    const seen: Record<number, number> = ((window as any).__seen = {});
    const el = document.querySelector(`section[data-topic="${topic}"] .chart`);
    const watch = () => {
      const chart = el && (window as any).echarts.getInstanceByDom(el);
      const data = chart ? (chart.getOption().series[0].data as [number, number][]) : [];
      const last = data.at(-1)?.[1];
      if (last !== undefined && !(last in seen)) seen[last] = Date.now();
      requestAnimationFrame(watch);
    };
    watch();
  }, topic);
  const latencies: number[] = [];
  for (let i = 1; i <= count; i++) {
    const sent = Date.now();
    expect(await server.publish('acme', topic, { points: [{ value: i }] })).toBe(200);
    await expect.poll(() => page.evaluate((v) => (window as any).__seen[v] as number | undefined, i)).toBeDefined();
    const at = await page.evaluate((v) => (window as any).__seen[v] as number, i);
    latencies.push(at - sent);
  }
  return latencies;
}

// Prints figures only: timing targets belong in benchmarks, not in pass/fail tests.
test('figures: WebSocket connect time and publish→chart latency', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const topic = 'test/latency';
    const id = await createDashboard(page, server.url, 'Latency', [{ title: 'Probe', kind: 'line_chart', topic }]);
    expect(await server.publish('acme', topic, { points: [{ value: 0 }] })).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');

    // Connect: the browser's own WebSocket, with the page's cookie, from `new WebSocket` to `welcome`.
    const connects: number[] = await page.evaluate(async () => {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        times.push(
          await new Promise<number>((resolve, reject) => {
            const start = performance.now();
            const ws = new WebSocket(`ws://${location.host}/api/ws`);
            ws.onmessage = (e) => {
              if (String(e.data).includes('"welcome"')) {
                resolve(performance.now() - start);
                ws.close();
              }
            };
            ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
          }),
        );
      }
      return times;
    });

    const latencies = await publishToChart(page, server, topic, 20);
    console.log(
      `figures: websocket connect median ${ms(median(connects))}, max ${ms(Math.max(...connects))} over ` +
        `${connects.length} connects; publish→chart median ${ms(median(latencies))}, p95 ` +
        `${ms(p95(latencies))}, max ${ms(Math.max(...latencies))} over ${latencies.length} publishes`,
    );
  } finally {
    await server.stop();
  }
});

test('figures: publish→chart latency over SSE, behind a proxy that refuses WebSockets', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  const proxy = await FilteringProxy.create(server.port, { webSocket: false });
  try {
    await signIn(page, 'ops@acme.test', proxy.url);
    const topic = 'test/latency';
    const id = await createDashboard(page, proxy.url, 'Latency', [{ title: 'Probe', kind: 'line_chart', topic }]);
    expect(await server.publish('acme', topic, { points: [{ value: 0 }] })).toBe(200);
    await page.goto(`${proxy.url}/d/${id}`);
    await expectLiveAgain(page, 'live-sse');
    await expect(page.locator(`section[data-topic="${topic}"]`)).toHaveAttribute('data-offset', /^\d+$/);
    const latencies = await publishToChart(page, server, topic, 50);
    console.log(
      `figures: sse publish→chart median ${ms(median(latencies))}, p95 ${ms(p95(latencies))}, max ` +
        `${ms(Math.max(...latencies))} over ${latencies.length} publishes`,
    );
  } finally {
    await proxy.close();
    await server.stop();
  }
});
