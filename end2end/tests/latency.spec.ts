import { expect, test } from '@playwright/test';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Prints figures only: timing targets belong in benchmarks, not in pass/fail tests.
test('figures: WebSocket connect time and publish→screen latency', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);

    // Connect: the socket is created → the server's `welcome` arrives.
    const connect = new Promise<number>((resolve) =>
      page.on('websocket', (ws) => {
        const created = Date.now();
        ws.on('framereceived', (f) => String(f.payload).includes('"welcome"') && resolve(Date.now() - created));
      }),
    );
    await page.goto(server.url);
    const connectMs = await connect;
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');

    // Publish → screen: the browser notes (same machine clock) when the tile shows each value.
    await page.evaluate(() => {
      const seen: Record<string, number> = ((window as any).__seen = {});
      new MutationObserver(() => {
        const value = document.querySelector('[data-key="probe"] .kpi-value')?.textContent;
        if (value && !(value in seen)) seen[value] = Date.now();
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const latencies: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const sent = Date.now();
      expect(await server.publish('acme', 'kpi/overview', { values: { probe: 1000 + i } })).toBe(200);
      const shown = `1,0${String(i).padStart(2, '0')}`;
      await expect(page.locator('[data-key="probe"] .kpi-value')).toHaveText(shown);
      const at = await page.evaluate((v) => (window as any).__seen[v] as number, shown);
      latencies.push(at - sent);
    }
    console.log(
      `figures: websocket connect ${connectMs} ms; publish→screen median ${median(latencies)} ms, ` +
        `max ${Math.max(...latencies)} ms over ${latencies.length} publishes`,
    );
  } finally {
    await server.stop();
  }
});
