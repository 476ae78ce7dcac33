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
    const bell = page.getByRole('button', { name: /^Notifications \d+ unread$/ });
    // The centre has its history: what is published from now on is new, and toasts.
    await expect(bell).toHaveAttribute('data-offset', /^\d+$/);
    const unread = async () => Number((await bell.textContent())!.match(/(\d+) unread/)![1]);
    const before = await unread();

    const status = await server.publish('acme', 'ops/notifications', {
      events: [{ type: 'notification', level: 'warning', title: 'Disk 91 % full', body: '<b>db-2</b> needs room' }],
    });
    expect(status).toBe(200);

    const toast = page.getByRole('alert').filter({ hasText: 'Disk 91 % full' });
    await expect(toast).toBeVisible();
    // A toast goes by itself after 6 s unless it is being read: the pointer on it keeps it, however
    // slowly the steps below run on a loaded machine.
    await toast.hover();
    await expect(toast).toContainText('<b>db-2</b> needs room'); // shown as text, never as markup
    await expect.poll(unread).toBeGreaterThan(before);
    await page.screenshot({ path: 'artifacts/toast.png' });
    await toast.getByRole('button', { name: 'Dismiss' }).click();
    await expect(toast).toHaveCount(0);

    await bell.click();
    const panel = page.getByRole('dialog', { name: 'Notifications' });
    await expect(panel.getByText('Disk 91 % full')).toBeVisible();
    await panel.getByRole('button', { name: 'Mark all as read' }).click();
    // The demo feed keeps publishing: what was there is read now, and only what came since counts.
    await expect(panel.locator('.notification', { hasText: 'Disk 91 % full' })).not.toHaveClass(/\bunread\b/);
    await expect
      .poll(async () => (await unread()) === (await panel.locator('.notification.unread').count()))
      .toBe(true);
    await panel.getByRole('button', { name: 'Clear' }).click();
    await expect(panel.getByText('Disk 91 % full')).toHaveCount(0);

    // A maintenance notice says when it is planned; a low-severity system error is only info.
    const at = Date.now() + 3_600_000;
    const notice = { type: 'maintenance', level: 'warning', title: 'Database upgrade', scheduledAt: at };
    const minor = { type: 'system:error', level: 'error', severity: 'low', title: 'One slow query' };
    expect(await server.publish('acme', 'ops/notifications', { events: [notice, minor] })).toBe(200);
    const planned = page.getByRole('alert').filter({ hasText: 'Database upgrade' });
    await expect(planned).toContainText('Scheduled for');
    await expect(panel.locator('.notification.level-info', { hasText: 'One slow query' })).toBeVisible();
    await expect(page.getByRole('alert').filter({ hasText: 'One slow query' })).toHaveCount(0);
  } finally {
    await server.stop();
  }
});

test('which levels raise a toast is each user’s own choice, kept on the server', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'viewer@acme.test', server.url);
    await page.goto(server.url);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    await expect(page.getByRole('button', { name: /^Notifications/ })).toHaveAttribute('data-offset', /^\d+$/);
    await page.getByRole('button', { name: /^Notifications \d+ unread$/ }).click();
    const choices = page.getByRole('group', { name: 'Pop up for' });
    await expect(choices.getByLabel('Warning')).toBeChecked();
    await choices.getByLabel('Warning').uncheck();
    await choices.getByLabel('Info').check();
    await expect.poll(async () => (await page.request.get(`${server.url}/api/me/preferences`)).json()).toEqual({
      toastLevels: ['info', 'error'],
    });

    const publish = (level: string, title: string) =>
      server.publish('acme', 'ops/notifications', { events: [{ type: 'notification', level, title }] });
    expect(await publish('warning', 'Quiet warning')).toBe(200);
    expect(await publish('info', 'Loud info')).toBe(200);
    await expect(page.getByRole('alert').filter({ hasText: 'Loud info' })).toBeVisible();
    await expect(page.getByRole('alert').filter({ hasText: 'Quiet warning' })).toHaveCount(0);
    await expect(page.getByRole('dialog', { name: 'Notifications' }).getByText('Quiet warning')).toBeVisible();

    await page.reload();
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live'); // hydrated
    await page.getByRole('button', { name: /^Notifications \d+ unread$/ }).click();
    await expect(page.getByRole('group', { name: 'Pop up for' }).getByLabel('Warning')).not.toBeChecked();
    await expect(page.getByRole('group', { name: 'Pop up for' }).getByLabel('Info')).toBeChecked();
  } finally {
    await server.stop();
  }
});

test('marking read, clearing and toast choices in one tab apply in the same user’s other tabs', async ({ context }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    const [tabA, tabB] = [await context.newPage(), await context.newPage()];
    await signIn(tabA, 'ops@acme.test', server.url);
    for (const tab of [tabA, tabB]) {
      await tab.goto(server.url);
      await expect(tab.getByRole('status')).toHaveAttribute('data-status', 'live');
      // The centre has its history: what is published from now on is new (unread), not history.
      await expect(tab.getByRole('button', { name: /^Notifications/ })).toHaveAttribute('data-offset', /^\d+$/);
    }
    const title = `Both tabs ${Date.now()}`;
    expect(await server.publish('acme', 'ops/notifications', { events: [{ type: 'notification', level: 'warning', title }] })).toBe(200);
    const panels = [tabA, tabB].map((tab) => tab.getByRole('dialog', { name: 'Notifications' }));
    for (const [i, tab] of [tabA, tabB].entries()) {
      await tab.getByRole('button', { name: /^Notifications \d+ unread$/ }).click();
      await expect(panels[i].locator('.notification.unread', { hasText: title })).toBeVisible();
    }

    await panels[0].getByRole('button', { name: 'Mark all as read' }).click();
    await expect(panels[1].locator('.notification', { hasText: title })).not.toHaveClass(/\bunread\b/);

    const info = (i: number) => panels[i].getByRole('checkbox', { name: 'Info' });
    const wasOn = await info(1).isChecked();
    await info(0).setChecked(!wasOn);
    await expect(info(1)).toBeChecked({ checked: !wasOn });

    await panels[0].getByRole('button', { name: 'Clear' }).click();
    await expect(panels[1].getByText(title)).toHaveCount(0);
    // The choice was saved for the user: a new tab starts with it.
    const tabC = await context.newPage();
    await tabC.goto(server.url);
    await tabC.getByRole('button', { name: /^Notifications \d+ unread$/ }).click();
    await expect(tabC.getByRole('dialog', { name: 'Notifications' }).getByRole('checkbox', { name: 'Info' })).toBeChecked({
      checked: !wasOn,
    });
  } finally {
    await server.stop();
  }
});
