import { expect, test, type Page } from '@playwright/test';
import { widgetState } from './support/dashboard';
import { expectLiveAgain } from './support/pill';
import { FilteringProxy } from './support/proxy';
import { signIn } from './support/session';

/// The orders chart's counters and the times of the points it draws.
const chart = (page: Page) => widgetState(page, 'sales/orders');

test('behind a proxy that refuses WebSockets the page goes Live over SSE, polls when SSE is blocked too, climbs back to the WebSocket by itself, and shows every point once', async ({
  page,
  baseURL,
}) => {
  const proxy = await FilteringProxy.create(Number(new URL(baseURL!).port), { webSocket: false });
  await signIn(page, 'ops@acme.test', proxy.url);
  await page.goto(proxy.url);
  const pill = page.getByRole('status');
  const widget = page.locator('[data-topic="sales/orders"]');

  await expectLiveAgain(page, 'live-sse');
  await expect(pill).toContainText('Live (SSE)');
  await expect(pill).toHaveAttribute('title', /WebSocket connections do not get through/);
  expect(proxy.refusedUpgrades, 'the WebSocket was tried first').toBeGreaterThan(0);
  await expect(widget).toHaveAttribute('data-offset', /^\d+$/);
  const start = await chart(page);
  // The demo feed publishes a point a second: they keep coming over the stream.
  await expect.poll(async () => (await chart(page)).offset).toBeGreaterThan(start.offset + 2);

  proxy.blockSse();
  await expectLiveAgain(page, 'polling');
  await expect(pill).toHaveAttribute('title', /asks for updates every 30 s/);
  const polled = await chart(page);
  expect(polled.offset, 'the first poll brought what was published meanwhile').toBeGreaterThan(start.offset + 2);

  proxy.allowWebSocket = true;
  proxy.allowSse = true;
  await expectLiveAgain(page, 'live');
  await expect.poll(async () => (await chart(page)).offset).toBeGreaterThan(polled.offset + 2);

  const end = await chart(page);
  expect(end.gaps, 'positions carried over at every switch').toBe(0);
  expect(end.updates - start.updates, 'one applied update per offset').toBe(end.offset - start.offset);
  expect(end.times.length).toBe(Math.min(120, start.points + end.updates - start.updates));
  expect(end.times.every((t, i) => i === 0 || t > end.times[i - 1]), 'no repeated point').toBe(true);
  await proxy.close();
});
