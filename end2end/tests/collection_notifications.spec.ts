import { expect, test } from '@playwright/test';
import { createDashboard, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test('an admin has a collection widget raise notifications; a change toasts in every tab of a viewer, on any page', async ({
  browser,
}) => {
  test.setTimeout(240_000);
  const server = await OwnServer.create();
  await server.start();
  const adminContext = await browser.newContext();
  const viewerContext = await browser.newContext();
  try {
    const admin = await adminContext.newPage();
    await signIn(admin, 'ops@acme.test', server.url);
    const id = await createDashboard(admin, server.url, 'Orders desk', [
      { title: 'Open orders', kind: 'document_table', topic: 'e2e/orders' },
      { title: 'Revenue', kind: 'line_chart', topic: 'e2e/revenue' },
    ]);
    await admin.goto(`${server.url}/d/${id}`);
    await admin.getByRole('button', { name: 'Edit dashboard' }).click();
    // Only the collection widget offers them.
    await expect(admin.locator('.notify-editor')).toHaveCount(1);
    const editor = admin.locator('.notify-editor');
    await editor.getByText('Notifications: off').click();
    const form = admin.getByRole('form', { name: 'Notifications of Open orders' });
    // A template the server would refuse is refused in the form, with the reason.
    await form.getByLabel('Title').fill('Order {id');
    await form.getByRole('button', { name: 'Save notifications' }).click();
    await expect(form.getByRole('alert')).toHaveText('the title has a { without its }');
    await form.getByLabel('deleted').check();
    await form.getByLabel('Title').fill('Order {id} {op} for {customer}');
    await form.getByLabel('Level').selectOption('warning');
    await form.getByRole('button', { name: 'Save notifications' }).click();
    await expect(form.getByText('Saved')).toBeVisible();
    await expect(editor.locator('summary')).toHaveText('Notifications: created, deleted');
    await admin.screenshot({ path: 'artifacts/collection-notify-editor.png', fullPage: true });

    // A viewer with two tabs: one on this dashboard, one on another (the demo's).
    const viewer = await viewerContext.newPage();
    await signIn(viewer, 'viewer@acme.test', server.url);
    await viewer.goto(`${server.url}/d/${id}`);
    const elsewhere = await viewerContext.newPage();
    await elsewhere.goto(server.url);
    for (const page of [viewer, elsewhere]) {
      await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
      // The centre has its history: what is raised from now on is new, and toasts.
      await expect(page.getByRole('button', { name: /^Notifications/ })).toHaveAttribute('data-offset', /^\d+$/);
    }
    // The collection does not exist yet: the widget waits for it, and its first change creates it.
    const table = widgetOf(viewer, 'e2e/orders');

    const created = { op: 'upsert', id: 'o-1', doc: { customer: 'Initech', total: 120 } };
    expect(await server.publish('acme', 'e2e/orders', { changes: [created] })).toBe(200);
    // A toast goes by itself after 6 s: both tabs are watched at once, not one after the other.
    await Promise.all(
      [viewer, elsewhere].map((page) =>
        expect(page.getByRole('alert').filter({ hasText: 'Order o-1 created for Initech' })).toBeVisible(),
      ),
    );
    await expect(table.getByRole('cell', { name: 'Initech' })).toBeVisible();
    await viewer.screenshot({ path: 'artifacts/collection-notify-toast.png' });

    // An update is not chosen: nothing. The delete that follows it is.
    const updated = { op: 'upsert', id: 'o-1', doc: { customer: 'Initech Ltd', total: 140 } };
    expect(await server.publish('acme', 'e2e/orders', { changes: [updated] })).toBe(200);
    await expect(table.getByRole('cell', { name: 'Initech Ltd' })).toBeVisible();
    expect(await server.publish('acme', 'e2e/orders', { changes: [{ op: 'delete', id: 'o-1' }] })).toBe(200);
    await expect(elsewhere.getByRole('alert').filter({ hasText: 'Order o-1 deleted for —' })).toBeVisible();

    // Both are in the centre of the tab on the other page, and in a reloaded one; no update.
    await elsewhere.getByRole('button', { name: /^Notifications \d+ unread$/ }).click();
    const panel = elsewhere.getByRole('dialog', { name: 'Notifications' });
    await expect(panel.getByText('Order o-1 created for Initech')).toBeVisible();
    await expect(panel.getByText('Order o-1 deleted for —')).toBeVisible();
    await expect(panel.getByText(/Order o-1 updated/)).toHaveCount(0);
    await expect(panel.getByText('Open orders · Orders desk').first()).toBeVisible();
    await viewer.reload();
    await viewer.getByRole('button', { name: /^Notifications \d+ unread$/ }).click();
    await expect(viewer.getByRole('dialog', { name: 'Notifications' }).getByText('Order o-1 created for Initech')).toBeVisible();
    await expect(viewer.getByRole('alert').filter({ hasText: 'Order o-1 created' })).toHaveCount(0);
  } finally {
    await adminContext.close();
    await viewerContext.close();
    await server.stop();
  }
});
