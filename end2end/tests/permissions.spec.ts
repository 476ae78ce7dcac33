import { expect, test } from '@playwright/test';
import { chartValues, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test('an admin takes a topic away from viewers and hides a field, and an open viewer page follows at once', async ({
  browser,
}) => {
  test.setTimeout(240_000);
  const server = await OwnServer.create();
  await server.start();
  const adminContext = await browser.newContext();
  const viewerContext = await browser.newContext();
  try {
    const viewer = await viewerContext.newPage();
    await signIn(viewer, 'viewer@acme.test', server.url);
    await viewer.goto(server.url);
    const orders = widgetOf(viewer, 'sales/orders');
    const open = widgetOf(viewer, 'orders/open');
    await expect(viewer.getByRole('status')).toHaveAttribute('data-status', 'live');
    await expect(orders).toHaveAttribute('data-offset', /^\d+$/);
    await expect(open.getByRole('columnheader', { name: 'Customer' })).toBeVisible();

    const admin = await adminContext.newPage();
    await signIn(admin, 'ops@acme.test', server.url);
    await admin.goto(server.url);
    await admin.getByRole('button', { name: 'Edit dashboard' }).click();
    const form = admin.getByRole('form', { name: 'Topic permissions' });
    await expect(form.getByRole('button', { name: 'Save permissions' })).toBeEnabled();
    // A pattern the server would refuse is refused in the form, naming the rule.
    await form.getByRole('button', { name: 'Add a rule' }).click();
    await form.getByLabel('Topics').first().fill('sales/**/eu');
    await form.getByRole('button', { name: 'Save permissions' }).click();
    await expect(form.locator('.form-message')).toHaveText(/^Rule 1: '\*\*' may only be the last segment/);
    await form.getByLabel('Topics').first().fill('sales/**');
    await form.getByLabel('Viewers read').first().uncheck();
    await form.getByRole('button', { name: 'Add a rule' }).click();
    await form.getByLabel('Topics').nth(1).fill('orders/open');
    await form.getByLabel('Fields only admins see').nth(1).fill('customer');
    await form.getByRole('button', { name: 'Save permissions' }).click();
    await expect(form.locator('.form-message')).toHaveText(/^Saved \(version 1\)/);

    // The viewer's chart empties and says why; the table loses the column; nothing else stops.
    await expect(orders).toHaveAttribute('data-denied', 'true');
    await expect(orders).toHaveClass(/\bstale\b/);
    await expect(orders.getByRole('alert')).toHaveText('a viewer may not read topic sales/orders');
    await expect(orders).toHaveAttribute('data-offset', '');
    await expect.poll(() => chartValues(viewer, 'sales/orders'), { message: 'the chart shows nothing it held' }).toEqual([]);
    await expect(open.getByRole('columnheader', { name: 'Customer' })).toHaveCount(0);
    await expect(open.getByRole('columnheader', { name: 'Total' })).toBeVisible();
    await expect(viewer.getByRole('status')).toHaveAttribute('data-status', 'live');
    const tickets = widgetOf(viewer, 'support/tickets');
    const before = Number(await tickets.getAttribute('data-offset'));
    await expect.poll(async () => Number(await tickets.getAttribute('data-offset'))).toBeGreaterThan(before);
    await viewer.screenshot({ path: 'artifacts/permissions-viewer.png' });
    await admin.screenshot({ path: 'artifacts/permissions-editor.png', fullPage: true });

    // The admin still sees both, and a reload of the viewer's page is refused the same way.
    await expect(widgetOf(admin, 'sales/orders')).not.toHaveAttribute('data-denied', 'true');
    await expect(widgetOf(admin, 'orders/open').getByRole('columnheader', { name: 'Customer' })).toBeVisible();
    await viewer.reload();
    await expect(widgetOf(viewer, 'sales/orders')).toHaveAttribute('data-denied', 'true');
    await expect(widgetOf(viewer, 'orders/open').getByRole('columnheader', { name: 'Total' })).toBeVisible();
    await expect(widgetOf(viewer, 'orders/open').getByRole('columnheader', { name: 'Customer' })).toHaveCount(0);
  } finally {
    await adminContext.close();
    await viewerContext.close();
    await server.stop();
  }
});
