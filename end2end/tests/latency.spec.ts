import { expect, test } from '@playwright/test';
import { createDashboard } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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

    // Publish → chart: the page watches the ECharts instance itself every frame and notes (same
    // machine clock) when each probe value is in the chart's data.
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
    for (let i = 1; i <= 20; i++) {
      const sent = Date.now();
      expect(await server.publish('acme', topic, { points: [{ value: i }] })).toBe(200);
      await expect.poll(() => page.evaluate((v) => (window as any).__seen[v] as number | undefined, i)).toBeDefined();
      const at = await page.evaluate((v) => (window as any).__seen[v] as number, i);
      latencies.push(at - sent);
    }
    const ms = (x: number) => `${Math.round(x)} ms`;
    console.log(
      `figures: websocket connect median ${ms(median(connects))}, max ${ms(Math.max(...connects))} over ` +
        `${connects.length} connects; publish→chart median ${ms(median(latencies))}, max ` +
        `${ms(Math.max(...latencies))} over ${latencies.length} publishes`,
    );
  } finally {
    await server.stop();
  }
});
