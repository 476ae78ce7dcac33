import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { createDashboard, widgetOf } from './support/dashboard';
import { usedHeapMb } from './support/heap';
import { FaultyNetwork } from './support/network';
import { expectLiveAgain, readPill } from './support/pill';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

// The page never shows stale data as live: on any network the pill says Live (or Live (SSE), or
// Polling) only while data can arrive, and no widget stays frozen once the path works again.

// No Playwright trace: these pages hold streams open through a proxy that stalls them, and
// zipping a trace whose network resources are still being written fails the test on a loaded
// machine ("file data stream has unexpected number of bytes"), whatever the page did. The
// screenshots and the printed steps say what happened.
test.use({ trace: 'off' });

/// Heartbeats every 5 s (WebSocket and SSE) unless `LIVEDASH_E2E_HEARTBEAT_SECS` says otherwise
/// (25 measures the defaults): a dead path must show within heartbeat + 10 s.
const HEARTBEAT_SECS = Number(process.env.LIVEDASH_E2E_HEARTBEAT_SECS ?? 5);
const LEAVES_LIVE_WITHIN_MS = (HEARTBEAT_SECS + 10) * 1_000;

/// Runs `body` with a server of its own behind a faulty network, and stops both afterwards.
async function withNetwork(body: (network: FaultyNetwork) => Promise<void>) {
  const server = await OwnServer.create({
    LIVEDASH_HEARTBEAT_SECS: String(HEARTBEAT_SECS),
    LIVEDASH_SSE_HEARTBEAT_SECS: String(HEARTBEAT_SECS),
  });
  await server.start();
  const network = await FaultyNetwork.create(server.port);
  try {
    await body(network);
  } finally {
    await network.close();
    await server.stop();
  }
}

/// A browser context (its tabs share one connection) signed in through the network.
async function signedIn(browser: Browser, network: FaultyNetwork): Promise<BrowserContext> {
  const context = await browser.newContext();
  await signIn(await context.newPage(), 'ops@acme.test', network.url);
  return context;
}

/// The demo dashboard's orders chart (the demo feed adds a point every second).
const orders = (page: Page) => widgetOf(page, 'sales/orders');
const offsetOf = async (page: Page) => Number(await orders(page).getAttribute('data-offset'));

/// Waits until the orders chart has moved `by` offsets past `from`: data arrives.
async function expectMoving(page: Page, by = 2) {
  const from = await offsetOf(page);
  await expect.poll(() => offsetOf(page), { message: 'the widget keeps updating' }).toBeGreaterThanOrEqual(from + by);
}

async function openLive(context: BrowserContext, url: string, status = 'live'): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await expectLiveAgain(page, status);
  await expect(orders(page)).toHaveAttribute('data-offset', /^\d+$/);
  return page;
}

/// Waits until the pill of every page has left `status`; returns how long that took after `since`.
async function leftWithin(pages: Page[], status: string, since: number, budgetMs: number): Promise<number> {
  let worst = 0;
  for (const page of pages) {
    // Timers run late on a loaded machine: the assertion allows a margin, the figure is printed.
    await expect(page.getByRole('status')).not.toHaveAttribute('data-status', status, { timeout: budgetMs + 5_000 });
    worst = Math.max(worst, Date.now() - since);
  }
  return worst;
}

test('on a half-open path the pill leaves Live within heartbeat + 10 s, in one tab and in tabs that share, and all recover by themselves', async ({
  browser,
}) => {
  await withNetwork(async (network) => {
    for (const tabs of [1, 2]) {
      const context = await signedIn(browser, network);
      const pages: Page[] = [];
      for (let i = 0; i < tabs; i++) pages.push(await openLive(context, `${network.url}/`));
      await expectMoving(pages[tabs - 1]);

      network.set('blackhole');
      const dead = Date.now();
      const took = await leftWithin(pages, 'live', dead, LEAVES_LIVE_WITHIN_MS);
      console.log(`half-open path, ${tabs} tab(s): left Live after ${took} ms (heartbeat ${HEARTBEAT_SECS} s)`);
      for (const page of pages) expect((await readPill(page)).status).toMatch(/^(reconnecting|connecting)$/);

      network.set('none');
      for (const page of pages) {
        await expectLiveAgain(page);
        await expectMoving(page);
      }
      await context.close();
    }
  });
});

test('on a half-open path the SSE fallback leaves Live (SSE) within heartbeat + 10 s', async ({ page }) => {
  await withNetwork(async (network) => {
    network.refuseUpgrades = true;
    await signIn(page, 'ops@acme.test', network.url);
    await page.goto(`${network.url}/`);
    await expectLiveAgain(page, 'live-sse');
    await expectMoving(page);

    network.set('blackhole');
    const took = await leftWithin([page], 'live-sse', Date.now(), LEAVES_LIVE_WITHIN_MS);
    console.log(`half-open path on SSE: left Live (SSE) after ${took} ms (heartbeat ${HEARTBEAT_SECS} s)`);
    network.set('none');
    await expectLiveAgain(page, 'live-sse');
    await expectMoving(page);
  });
});

test('a poll that hangs is abandoned: the pill does not stay Connecting, and polling starts once polls are answered', async ({
  page,
}) => {
  await withNetwork(async (network) => {
    network.refuseUpgrades = true;
    network.refuseSse = true;
    network.hangPolls = true;
    await signIn(page, 'ops@acme.test', network.url);
    await page.goto(`${network.url}/`);
    await expect.poll(() => network.seen.polls, { message: 'the page polls once the faster ways fail' }).toBeGreaterThan(0);
    // Before: the first poll never answered, and the pill said Connecting for ever.
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'reconnecting', { timeout: 20_000 });
    network.hangPolls = false;
    await expectLiveAgain(page, 'polling');
    await expect(orders(page)).toHaveAttribute('data-offset', /^\d+$/);
  });
});

test('a widget refreshed during an outage, and a tab switched back on during one, update again once the network returns', async ({
  browser,
}) => {
  await withNetwork(async (network) => {
    const context = await signedIn(browser, network);
    const leader = await openLive(context, `${network.url}/`);
    const follower = await openLive(context, `${network.url}/`);
    const liveSwitch = follower.getByRole('switch', { name: 'Live updates' });
    await liveSwitch.uncheck();
    await expect(follower.getByRole('status')).toHaveAttribute('data-status', 'paused');

    network.set('cut');
    await expect(leader.getByRole('status')).toHaveAttribute('data-status', 'reconnecting');
    // Before: the refresh marked the widget as waiting for a snapshot that the reconnect never
    // asked for, and the widget froze for good while the pill said Live.
    await orders(leader).getByRole('button', { name: /^Refresh / }).click();
    await liveSwitch.check();
    network.set('none');

    for (const page of [leader, follower]) {
      await expectLiveAgain(page);
      await expectMoving(page, 3);
    }
    await context.close();
  });
});

test('a live switch turned off before the page knows its user stays off once it does', async ({ page, baseURL }) => {
  await signIn(page);
  // `/api/auth/me` is held: the app has started, but does not know whose connection to share yet.
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/api/auth/me', async (route) => {
    await released;
    await route.continue();
  });
  await page.goto(`${baseURL}/`);
  await page.waitForFunction(() => (window as any).livedashStarted === true);
  const liveSwitch = page.getByRole('switch', { name: 'Live updates' });
  await liveSwitch.uncheck();
  // Before: the switch was dropped until the user was known, the pill said Connecting and then
  // Live, with the switch drawn off.
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'paused');

  // Once the user is known the tab takes its connection: it leads, so the shared WebSocket opens.
  const socket = page.waitForEvent('websocket');
  release();
  await socket;
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'paused');
  await expect(liveSwitch).not.toBeChecked();

  await liveSwitch.check();
  await expectLiveAgain(page);
  await expectMoving(page);
});

test('a page whose question of who its user is goes unanswered connects on its own', async ({ page, baseURL }) => {
  await signIn(page);
  // The request is swallowed, as on a path that went dark just as the page started.
  await page.route('**/api/auth/me', () => {});
  await page.goto(`${baseURL}/`);
  // Before: the tab waited for the answer as long as the browser kept the request open, saying
  // Connecting.
  await expectLiveAgain(page);
  await expectMoving(page);
});

test('a dashboard opened during an outage loads by itself once the network returns', async ({ page }) => {
  await withNetwork(async (network) => {
    await signIn(page, 'ops@acme.test', network.url);
    const other = await createDashboard(page, network.url, 'Opened during the outage', [
      { title: 'Orders again', kind: 'line_chart', topic: 'sales/orders' },
    ]);
    await page.goto(`${network.url}/`);
    await expectLiveAgain(page);
    const tab = page.locator(`a.tab[href="/d/${other}"]`);
    await expect(tab, 'the first dashboard has loaded, with the list of the others').toBeVisible();
    await expect(orders(page)).toHaveAttribute('data-offset', /^\d+$/);
    network.set('cut');
    await tab.click();
    // Before: the failed load stayed on the page for good, with no widget to come back.
    await expect(page.getByRole('alert').filter({ hasText: 'Trying again' })).toBeVisible();
    network.set('none');
    await expectLiveAgain(page);
    await expectMoving(page);
  });
});

test('tabs that share a connection fall back to SSE when the network starts refusing WebSockets after they were Live', async ({
  browser,
}) => {
  await withNetwork(async (network) => {
    const context = await signedIn(browser, network);
    const tabs = [await openLive(context, `${network.url}/`), await openLive(context, `${network.url}/`)];
    network.refuseUpgrades = true;
    network.dropAll();
    // Before: the shared connection, once Live, only ever retried the WebSocket, until Offline.
    for (const tab of tabs) {
      await expectLiveAgain(tab, 'live-sse');
      await expectMoving(tab);
    }
    await context.close();
  });
});

test('charts are disposed of when their widgets go: switching dashboards 200 times leaves no chart behind', async ({
  page,
}) => {
  test.setTimeout(300_000 * Math.max(1, Number(process.env.LIVEDASH_E2E_SWITCHES ?? 200) / 200));
  const server = await OwnServer.create();
  await server.start();
  try {
    // Counts the ECharts instances alive: made by `echarts.init`, gone with their `dispose`.
    await page.addInitScript(() => {
      const w = window as any;
      w.__charts = 0;
      const counted = (init: (...args: unknown[]) => any) => (...args: unknown[]) => {
        const chart = init(...args);
        w.__charts += 1;
        const dispose = chart.dispose.bind(chart);
        chart.dispose = () => {
          w.__charts -= 1;
          dispose();
        };
        return chart;
      };
      // ECharts' bundle makes `window.echarts = {}` first, then fills it in: catch `init` as it
      // is set.
      let echarts: any;
      Object.defineProperty(w, 'echarts', {
        configurable: true,
        get: () => echarts,
        set: (value) => {
          echarts = value;
          let init: unknown;
          Object.defineProperty(value, 'init', {
            configurable: true,
            enumerable: true,
            get: () => init,
            set: (real) => (init = counted(real)),
          });
        },
      });
    });
    await signIn(page, 'ops@acme.test', server.url);
    const a = await createDashboard(page, server.url, 'Charts A', [
      { title: 'A1', kind: 'line_chart', topic: 'sales/orders' },
      { title: 'A2', kind: 'bar_chart', topic: 'sales/returns' },
    ]);
    const b = await createDashboard(page, server.url, 'Charts B', [
      { title: 'B1', kind: 'line_chart', topic: 'sales/orders' },
    ]);
    await page.goto(`${server.url}/d/${a}`);
    await expect.poll(() => page.evaluate(() => (window as any).__charts)).toBe(2);
    const heapBefore = await usedHeapMb(page);
    // 200 by default; LIVEDASH_E2E_SWITCHES=1000 tells a plateau from a leak (the heap at every 200).
    const switches = Number(process.env.LIVEDASH_E2E_SWITCHES ?? 200);
    const heaps = [heapBefore];
    for (let i = 0; i < switches; i++) {
      const [to, title, charts] = i % 2 === 0 ? [b, 'Charts B', 1] : [a, 'Charts A', 2];
      const tab = page.locator(`a.tab[href="/d/${to}"]`);
      await tab.click();
      await expect(tab, `now on ${title}`).toHaveAttribute('aria-current', 'page');
      await expect.poll(() => page.evaluate(() => (window as any).__charts)).toBe(charts);
      if ((i + 1) % 200 === 0 && i + 1 < switches) heaps.push(await usedHeapMb(page));
    }
    const heapAfter = await usedHeapMb(page);
    heaps.push(heapAfter);
    console.log(`${switches} dashboard switches: JS heap every 200: ${heaps.map((h) => h.toFixed(1)).join(' -> ')} MB, charts alive 2`);
  } finally {
    await server.stop();
  }
});

test('a page whose app failed to load while the network dropped reloads itself and starts', async ({ page, baseURL }) => {
  await signIn(page);
  // The first time, the WebAssembly does not arrive (the network dropped mid-load).
  let aborted = 0;
  await page.route('**/*.wasm', (route) => (aborted++ === 0 ? route.abort('connectionreset') : route.continue()));
  await page.goto(`${baseURL}/`);
  // Before: the server-rendered page said Connecting for good.
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live', { timeout: 30_000 });
  expect(aborted, 'loaded again after the failed load').toBeGreaterThanOrEqual(2);
});
