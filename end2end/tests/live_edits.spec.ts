import { expect, test, type Page } from '@playwright/test';
import { createDashboard, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

// An admin's edits reach every open page of the tenant (another tab of theirs, another user's
// page) without a reload: the server announces each edit on `dashboards/edits`.
test('an edit in one tab shows live in every open page of the tenant', async ({ browser }) => {
  const server = await OwnServer.create();
  await server.start();
  const admin = await browser.newContext();
  const watcher = await browser.newContext();
  try {
    const tabA = await admin.newPage();
    await signIn(tabA, 'ops@acme.test', server.url);
    const id = await createDashboard(tabA, server.url, 'Live edits', [
      { title: 'Tickets', kind: 'bar_chart', topic: 'support/tickets' },
    ]);
    const tabB = await admin.newPage();
    const viewer = await watcher.newPage();
    await signIn(viewer, 'viewer@acme.test', server.url);

    // How often tab B loads, and what the viewer's page asks of the server: a live edit is neither
    // a reload nor a new connection. (Tab B shares tab A's connection; the viewer, alone in its
    // browser, leads its own, which subscribes once per topic.)
    const sent: string[] = [];
    let loads = 0;
    let sockets = 0;
    tabB.on('load', () => loads++);
    viewer.on('websocket', (ws) => {
      sockets++;
      ws.on('framesent', (frame) => sent.push(String(frame.payload)));
    });
    const watching: Page[] = [tabB, viewer];
    for (const page of [tabA, ...watching]) {
      await page.goto(`${server.url}/d/${id}`);
      await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
      await expect(page.locator('main .widget-header h2')).toHaveText(['Tickets']);
    }

    await tabA.getByRole('button', { name: 'Edit dashboard' }).click();
    const form = tabA.getByRole('form', { name: 'Add a widget' });
    await form.getByLabel('Title').fill('Orders');
    await form.getByLabel('Kind').selectOption({ label: 'Line chart' });
    await form.getByLabel('Topic').fill('sales/orders');
    await form.getByRole('button', { name: 'Add widget' }).click();
    for (const page of watching) {
      await expect(page.locator('main .widget-header h2')).toHaveText(['Tickets', 'Orders']);
      // It starts live: the demo feed publishes orders every second.
      await expect(widgetOf(page, 'sales/orders')).toHaveAttribute('data-updates', /^[1-9]\d*$/);
    }

    await tabA.getByRole('button', { name: 'Move Orders earlier' }).click();
    for (const page of watching) {
      await expect(page.locator('main .widget-header h2')).toHaveText(['Orders', 'Tickets']);
    }

    await tabA.getByRole('button', { name: 'Remove Tickets' }).click();
    for (const page of watching) {
      await expect(page.locator('main .widget-header h2')).toHaveText(['Orders']);
    }
    await expect
      .poll(() => sent.some((f) => f.includes('"unsubscribe"') && f.includes('"support/tickets"')), {
        message: 'the removed widget unsubscribes',
      })
      .toBe(true);
    // The widgets that stayed kept running.
    const before = Number(await widgetOf(tabB, 'sales/orders').getAttribute('data-updates'));
    await expect
      .poll(async () => Number(await widgetOf(tabB, 'sales/orders').getAttribute('data-updates')))
      .toBeGreaterThan(before);

    await tabA.getByLabel('New dashboard title').fill('Night shift');
    await tabA.getByRole('button', { name: 'Create' }).click();
    for (const page of watching) {
      await expect(page.getByRole('navigation', { name: 'Dashboards' }).getByRole('link', { name: 'Night shift' })).toBeVisible();
    }
    await tabB.screenshot({ path: 'artifacts/live_edits.png', fullPage: true });
    expect(loads, 'tab B was never reloaded').toBe(1);
    expect(sockets, 'the viewer kept its one connection').toBe(1);
  } finally {
    await admin.close();
    await watcher.close();
    await server.stop();
  }
});
