import { expect, test } from '@playwright/test';
import { OwnServer } from './support/server';
import { from, signIn } from './support/session';

test('an admin creates a dashboard and adds, reorders and removes widgets', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    let sockets = 0;
    page.on('websocket', () => sockets++);
    await page.goto(server.url);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Operations');
    await page.getByLabel('New dashboard title').fill('Night shift');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Night shift');
    await expect(page).toHaveURL(/\/d\/\d+$/);
    await expect(page.getByRole('navigation', { name: 'Dashboards' }).getByRole('link')).toHaveText([
      'Operations',
      'Night shift',
    ]);

    await page.getByRole('button', { name: 'Edit dashboard' }).click();
    const form = page.getByRole('form', { name: 'Add a widget' });
    for (const [title, kind, topic] of [
      ['Orders', 'Line chart', 'sales/orders'],
      ['Tickets', 'Bar chart', 'support/tickets'],
      ['Open orders', 'Document table', 'orders/open'],
    ]) {
      await form.getByLabel('Title').fill(title);
      await form.getByLabel('Kind').selectOption({ label: kind });
      await form.getByLabel('Topic').fill(topic);
      await form.getByRole('button', { name: 'Add widget' }).click();
      await expect(page.getByRole('heading', { level: 2, name: title })).toBeVisible();
    }
    await form.getByLabel('Title').fill('Broken');
    await form.getByLabel('Topic').fill('../secrets');
    await form.getByRole('button', { name: 'Add widget' }).click();
    await expect(form.getByRole('alert')).toContainText('topic');

    const titles = page.locator('main .widget-header h2');
    await expect(titles).toHaveText(['Orders', 'Tickets', 'Open orders']);
    await page.getByRole('button', { name: 'Move Open orders earlier' }).click();
    await expect(titles).toHaveText(['Orders', 'Open orders', 'Tickets']);
    await page.getByRole('button', { name: 'Remove Orders' }).click();
    await expect(titles).toHaveText(['Open orders', 'Tickets']);
    await expect(page.locator('section[data-topic="orders/open"] tbody tr').first()).toBeVisible();
    await page.screenshot({ path: 'artifacts/editing.png', fullPage: true });

    // Moving between dashboards keeps the page's one connection.
    const tabs = page.getByRole('navigation', { name: 'Dashboards' });
    await tabs.getByRole('link', { name: 'Operations' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Operations');
    await tabs.getByRole('link', { name: 'Night shift' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Night shift');
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    expect(sockets, 'one WebSocket for the whole visit').toBe(1);

    await page.reload();
    await expect(titles, 'the server kept every change').toHaveText(['Open orders', 'Tickets']);
  } finally {
    await server.stop();
  }
});

test('a viewer watches but cannot edit a dashboard', async ({ page }) => {
  await signIn(page, 'viewer@acme.test');
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Operations');
  await expect(page.locator('section[data-topic="sales/orders"]')).toHaveAttribute('data-updates', /^[1-9]\d*$/);
  await expect(page.getByRole('button', { name: 'Edit dashboard' })).toHaveCount(0);
  await expect(page.getByLabel('New dashboard title')).toHaveCount(0);
  await expect(page.getByRole('button', { name: /^Remove / })).toHaveCount(0);

  // The server refuses too: hiding the buttons is not the protection.
  const dashboards = await (await page.request.get('/api/dashboards')).json();
  const id = dashboards[0].id;
  const add = await page.request.post(`/api/dashboards/${id}/widgets`, {
    data: { title: 'Mine', kind: 'bar_chart', topic: 'a/b' },
    headers: from(),
  });
  expect(add.status()).toBe(403);
  const create = await page.request.post('/api/dashboards', { data: { title: 'Mine' }, headers: from() });
  expect(create.status()).toBe(403);
  // A viewer may still choose their own modes.
  const widget = (await (await page.request.get(`/api/dashboards/${id}`)).json()).widgets[0].id;
  const mode = await page.request.put(`/api/me/widget-modes/${widget}`, { data: { mode: 'live' }, headers: from() });
  expect(mode.status()).toBe(204);
});
