import { expect, test } from '@playwright/test';
import { expectLiveAgain } from '../tests/support/pill';
import { FilteringProxy } from '../tests/support/proxy';
import { OwnServer } from '../tests/support/server';
import { signIn } from '../tests/support/session';

/// One minute of the demo dashboard on each transport: the bytes between browser and server (both
/// ways, through a counting proxy) and the server's CPU time, beside a minute with no browser at all
/// (the demo feed's own cost). Prints figures; nothing here passes or fails on them.
const MINUTE_MS = 60_000;

for (const transport of ['none', 'websocket', 'sse', 'polling'] as const) {
  test(`figures: one minute of the demo dashboard, ${transport}`, async ({ page }) => {
    test.setTimeout(3 * MINUTE_MS);
    const server = await OwnServer.create();
    await server.start();
    const proxy = await FilteringProxy.create(server.port, {
      webSocket: transport === 'websocket',
      sse: transport !== 'polling',
    });
    try {
      let updates = async () => 0;
      if (transport !== 'none') {
        await signIn(page, 'ops@acme.test', proxy.url);
        await page.goto(proxy.url);
        await expectLiveAgain(page, { websocket: 'live', sse: 'live-sse', polling: 'polling' }[transport]);
        await expect(page.locator('[data-topic="sales/orders"]')).toHaveAttribute('data-offset', /^\d+$/);
        updates = () =>
          page.evaluate(() =>
            [...document.querySelectorAll('section[data-updates]')].reduce((n, w) => n + Number(w.getAttribute('data-updates')), 0),
          );
      }
      const [bytes0, cpu0, updates0] = [proxy.bytes(), await server.cpuMs(), await updates()];
      await page.waitForTimeout(MINUTE_MS); // the measurement itself: a minute of watching
      const [bytes1, cpu1, updates1] = [proxy.bytes(), await server.cpuMs(), await updates()];
      const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
      console.log(
        `figures: ${transport}: to the browser ${kb(bytes1.toBrowser - bytes0.toBrowser)}, from it ` +
          `${kb(bytes1.fromBrowser - bytes0.fromBrowser)}, server CPU ${Math.round(cpu1 - cpu0)} ms, ` +
          `${updates1 - updates0} widget updates applied, in one minute`,
      );
    } finally {
      await proxy.close();
      await server.stop();
    }
  });
}
