import { expect, test } from '@playwright/test';
import { widgetState } from './support/dashboard';
import { expectLiveAgain } from './support/pill';
import { CuttableProxy } from './support/proxy';
import { signIn } from './support/session';

test('a network outage of a few seconds: Reconnecting, then Live at the next retry, and not a point lost or repeated', async ({
  page,
  baseURL,
}) => {
  const proxy = await CuttableProxy.create(Number(new URL(baseURL!).port));
  await signIn(page, 'ops@acme.test', proxy.url);
  await page.goto(proxy.url);
  const pill = page.getByRole('status');
  const widget = page.locator('[data-topic="sales/orders"]');
  await expect(pill).toHaveAttribute('data-status', 'live');
  await expect(widget).toHaveAttribute('data-offset', /^\d+$/);
  // Read in one task of the page, so no update lands between the three values.
  const { offset: startOffset, points: startPoints, updates: startUpdates } = await widgetState(page, 'sales/orders');

  await proxy.cut();
  await expect(pill).toHaveAttribute('data-status', 'reconnecting');
  await page.waitForTimeout(2_500); // the server keeps publishing: these points must not be lost
  await proxy.restore();
  const back = Date.now();
  // The client may be waiting out a backoff delay: it is Live at the retry it announces. At most the
  // attempt already under way when the network returned may fail.
  const failed = await expectLiveAgain(page);
  expect(failed, 'attempts that failed after the network returned').toBeLessThanOrEqual(1);
  const reconnectMs = Date.now() - back;

  // The missed points are replayed from the resume token: every offset once, no gap announced.
  await expect.poll(async () => Number(await widget.getAttribute('data-offset'))).toBeGreaterThan(startOffset + 4);
  const state = await widgetState(page, 'sales/orders');
  expect(state.gaps, 'history bridged the outage').toBe(0);
  expect(state.updates - startUpdates, 'one applied update per offset').toBe(state.offset - startOffset);
  expect(state.times.length).toBe(Math.min(120, startPoints + state.updates - startUpdates));
  expect(state.times.every((t, i) => i === 0 || t > state.times[i - 1]), 'no repeated point').toBe(true);
  console.log(`outage: live again ${reconnectMs} ms after the network returned`);
  await proxy.cut();
});
