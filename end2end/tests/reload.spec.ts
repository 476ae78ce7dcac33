import { expect, test } from '@playwright/test';
import { chartValues, createDashboard, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test('a page refresh resumes where the old page stopped: no point missing, none repeated', async ({ page }) => {
  // Snapshots of 5 points: a new page that started over (instead of resuming from its saved
  // position) could show only the last five, and this test would see the hole.
  const server = await OwnServer.create({ LIVEDASH_SNAPSHOT_POINTS: '5' });
  // A restored view must not break hydration of the server-rendered page.
  const crashes: string[] = [];
  page.on('console', (m) => /panicked|hydration error/i.test(m.text()) && crashes.push(m.text()));
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const topic = 'test/sequence';
    const id = await createDashboard(page, server.url, 'Sequence', [{ title: 'Sequence', kind: 'line_chart', topic }]);
    let next = 1;
    const publish = async (n: number) => {
      for (let i = 0; i < n; i++, next++) {
        expect(await server.publish('acme', topic, { points: [{ ts: next, value: next }] })).toBe(200);
      }
    };
    await publish(3);
    await page.goto(`${server.url}/d/${id}`);
    const widget = widgetOf(page, topic);
    await expect.poll(() => chartValues(page, topic)).toEqual([1, 2, 3]);
    await publish(7); // seen by this page
    // Unread notifications are part of what a refresh keeps (and the header is server-rendered:
    // restoring them must not break hydration).
    expect(await server.publish('acme', 'ops/notifications', { events: [{ type: 'notification', level: 'info', title: 'Before reload' }] })).toBe(200);
    const unread = page.getByRole('button', { name: /^Notifications [1-9]\d* unread$/ });
    await expect(unread).toBeVisible();

    for (let round = 0; round < 3; round++) {
      await expect.poll(async () => (await chartValues(page, topic)).length).toBe(next - 1);
      // The server keeps publishing while the page reloads.
      const during = publish(12);
      await page.reload();
      await during;
      await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    }
    await publish(4);
    const expected = Array.from({ length: next - 1 }, (_, i) => i + 1);
    await expect.poll(() => chartValues(page, topic)).toEqual(expected);
    await expect(widget).toHaveAttribute('data-gaps', '0');
    await expect(unread, 'still unread after three refreshes').toBeVisible();
    expect(crashes).toEqual([]);
  } finally {
    await server.stop();
  }
});

test('a page that cannot save leaves no older save behind for the next page', async ({ page, baseURL }) => {
  await signIn(page);
  const id = await createDashboard(page, baseURL!, 'Unsaved', [{ title: 'Orders', kind: 'line_chart', topic: 'sales/orders' }]);
  await page.goto(`${baseURL}/d/${id}`);
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
  // From the next page on, sessionStorage is full (the test keeps a way to write to it).
  await page.addInitScript(() => {
    const real = Storage.prototype.setItem;
    (window as any).__plant = (key: string, value: string) => real.call(window.sessionStorage, key, value);
    Storage.prototype.setItem = () => {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    };
  });
  await page.reload();
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
  // An older save, as an earlier page in this tab left it.
  const key = 'livedash.session.v1';
  await page.evaluate((key) => (window as any).__plant(key, '{"user":"acme/ops@acme.test","widgets":{}}'), key);
  // This page's own save fails as it goes; the next page must not find the older one instead.
  // What the next page finds, read before any of its own scripts runs.
  await page.addInitScript((key) => ((window as any).__found = window.sessionStorage.getItem(key)), key);
  await page.reload();
  expect(await page.evaluate(() => (window as any).__found)).toBeNull();
});
