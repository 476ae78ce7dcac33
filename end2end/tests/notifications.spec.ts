import { expect, test } from '@playwright/test';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test('a warning event raises a toast and increments the unread count; the centre marks it read', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    await page.goto(server.url);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    const bell = page.getByRole('button', { name: /^Notifications, \d+ unread$/ });
    const unread = async () => Number((await bell.getAttribute('aria-label'))!.match(/(\d+) unread/)![1]);
    const before = await unread();

    const status = await server.publish('acme', 'ops/notifications', {
      events: [{ type: 'notification', level: 'warning', title: 'Disk 91 % full', body: '<b>db-2</b> needs room' }],
    });
    expect(status).toBe(200);

    const toast = page.getByRole('alert').filter({ hasText: 'Disk 91 % full' });
    await expect(toast).toBeVisible();
    await expect(toast).toContainText('<b>db-2</b> needs room'); // shown as text, never as markup
    await expect.poll(unread).toBeGreaterThan(before);
    await page.screenshot({ path: 'artifacts/toast.png' });

    await bell.click();
    const panel = page.getByRole('dialog', { name: 'Notifications' });
    await expect(panel.getByText('Disk 91 % full')).toBeVisible();
    await panel.getByRole('button', { name: 'Mark all as read' }).click();
    await expect(page.getByRole('button', { name: 'Notifications, 0 unread' })).toBeVisible();
    await toast.getByRole('button', { name: 'Dismiss' }).click();
    await expect(toast).toHaveCount(0);
    await panel.getByRole('button', { name: 'Clear' }).click();
    await expect(panel.getByText('Disk 91 % full')).toHaveCount(0);
  } finally {
    await server.stop();
  }
});
