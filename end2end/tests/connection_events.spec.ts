import { expect, test } from '@playwright/test';
import { expectLiveAgain } from './support/pill';
import { CuttableProxy } from './support/proxy';
import { signIn } from './support/session';

type Raised = { name: string; detail: { reason?: string; downtimeMs?: number } | null; at: number };

test('an outage through several retries is one "Connection lost" and one "Connection restored" in the events and the notification centre', async ({
  page,
  baseURL,
}) => {
  const proxy = await CuttableProxy.create(Number(new URL(baseURL!).port));
  // Every connection event the page raises on `window`, from its first moment.
  await page.addInitScript(() => {
    const raised: unknown[] = [];
    (window as any).__connectionEvents = raised;
    for (const name of ['connection:established', 'connection:lost', 'connection:restored']) {
      window.addEventListener(name, (e) => raised.push({ name, detail: (e as CustomEvent).detail ?? null, at: Date.now() }));
    }
  });
  const raised = () => page.evaluate(() => (window as any).__connectionEvents as Raised[]);
  await signIn(page, 'ops@acme.test', proxy.url);
  await page.goto(proxy.url);
  const pill = page.getByRole('status');
  await expect(pill).toHaveAttribute('data-status', 'live');
  await expect.poll(async () => (await raised()).map((e) => e.name)).toEqual(['connection:established']);

  // Cut long enough for more than one retry: still one loss.
  const cutAt = Date.now();
  await proxy.cut();
  await expect(pill).toHaveAttribute('data-status', 'reconnecting');
  // A warning, which pops up by default.
  await expect(page.locator('.toast', { hasText: 'Connection lost (the network dropped the connection)' })).toHaveCount(1);
  await expect(pill).toHaveAttribute('data-attempt', /^([2-9]|\d\d)$/, { timeout: 60_000 });
  const cutFor = await page.evaluate(() => Date.now());
  // The page reports how long it was without data, for the server's recovery-time histogram.
  const reported = page.waitForResponse((r) => r.url().endsWith('/api/me/recovery'));
  await proxy.restore();
  await expectLiveAgain(page);
  const events = await raised();
  expect(events.map((e) => e.name)).toEqual(['connection:established', 'connection:lost', 'connection:restored']);
  expect(events[1].detail?.reason).toBe('the network dropped the connection');
  const downtime = events[2].detail!.downtimeMs!;
  expect(downtime, 'from the loss to the restore').toBeGreaterThanOrEqual(events[2].at - events[1].at - 50);
  expect(downtime, 'not from before the cut').toBeLessThanOrEqual(events[2].at - cutAt + 1_000);
  expect(events[1].at).toBeLessThan(cutFor);
  const report = await reported;
  expect(report.status()).toBe(204);
  expect(JSON.parse(report.request().postData()!)).toEqual({ downtimeMs: downtime });

  // The notification centre has one of each, as its own entries.
  await page.getByRole('button', { name: /^Notifications/ }).click();
  const centre = page.getByRole('dialog', { name: 'Notifications' });
  await expect(centre.getByText('Connection lost (the network dropped the connection)')).toHaveCount(1);
  await expect(centre.getByText(/^Connection restored after \d+ (s|min)/)).toHaveCount(1);
  await page.screenshot({ path: 'artifacts/connection-events.png' });
  await proxy.cut();
});
