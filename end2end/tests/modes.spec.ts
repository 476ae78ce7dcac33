import { expect, test } from '@playwright/test';
import { chartValues, createDashboard, widgetOf } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test('Manual mode holds updates until the refresh click, and the mode survives a reload and another browser', async ({
  page,
  browser,
}) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const topic = 'test/manual';
    const id = await createDashboard(page, server.url, 'Modes', [{ title: 'Manual chart', kind: 'line_chart', topic }]);
    expect(await server.publish('acme', topic, { points: [{ value: 1 }] })).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    const widget = widgetOf(page, topic);
    await expect(widget).toHaveAttribute('data-points', '1');

    await widget.getByLabel('Update mode of Manual chart').selectOption('manual');
    await expect(widget.locator('.mode-badge')).toHaveText('Manual');
    // A witness in another browser, whose view of the widget stays Live, proves when the points
    // published have been delivered: only then does "not applied here" mean anything.
    const witness = await (await browser.newContext()).newPage();
    await signIn(witness, 'viewer@acme.test', server.url);
    await witness.goto(`${server.url}/d/${id}`);
    await expect.poll(() => chartValues(witness, topic)).toEqual([1]);
    for (const value of [2, 3, 4]) {
      expect(await server.publish('acme', topic, { points: [{ value }] })).toBe(200);
    }
    await expect.poll(() => chartValues(witness, topic)).toEqual([1, 2, 3, 4]);
    expect(await chartValues(page, topic), 'nothing is applied in Manual mode').toEqual([1]);
    await widget.getByRole('button', { name: 'Refresh Manual chart' }).click();
    await expect.poll(() => chartValues(page, topic)).toEqual([1, 2, 3, 4]);
    expect(await server.publish('acme', topic, { points: [{ value: 5 }] })).toBe(200);
    await expect.poll(() => chartValues(witness, topic)).toEqual([1, 2, 3, 4, 5]);
    expect(await chartValues(page, topic), 'unsubscribed again after the refresh').toEqual([1, 2, 3, 4]);
    await witness.context().close();

    await page.reload();
    await expect(widgetOf(page, topic).locator('.mode-badge')).toHaveText('Manual');
    const elsewhere = await browser.newPage();
    await signIn(elsewhere, 'ops@acme.test', server.url);
    await elsewhere.goto(`${server.url}/d/${id}`);
    await expect(widgetOf(elsewhere, topic).locator('.mode-badge')).toHaveText('Manual');
    await expect(widgetOf(elsewhere, topic).getByLabel('Update mode of Manual chart')).toHaveValue('manual');
    // A fresh page fetches a Manual widget's data once, then holds it.
    await expect.poll(() => chartValues(elsewhere, topic)).toEqual([1, 2, 3, 4, 5]);
    // Another user's view of the same widget keeps the default.
    const viewer = await browser.newPage();
    await signIn(viewer, 'viewer@acme.test', server.url);
    await viewer.goto(`${server.url}/d/${id}`);
    await expect(widgetOf(viewer, topic).locator('.mode-badge')).toHaveText('Live');
  } finally {
    await server.stop();
  }
});

test('an interval mode stays subscribed and applies what arrived at each tick', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const topic = 'test/interval';
    const slow = 'test/interval-slow';
    const id = await createDashboard(page, server.url, 'Interval', [
      { title: 'Every five', kind: 'bar_chart', topic, defaultMode: '5s' },
      { title: 'Every minute', kind: 'bar_chart', topic: slow, defaultMode: '1min' },
    ]);
    expect(await server.publish('acme', topic, { points: [{ value: 1 }] })).toBe(200);
    expect(await server.publish('acme', slow, { points: [{ value: 7 }] })).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    const widget = widgetOf(page, topic);
    await expect(widget.locator('.mode-badge')).toHaveText('Every 5s');
    // An interval widget shows its first snapshot at once, not at its first tick: a one-minute
    // widget is not blank for a minute after the page loads.
    await expect(widgetOf(page, slow)).toHaveAttribute('data-points', '1', { timeout: 10_000 });
    await expect(widget).toHaveAttribute('data-points', '1');
    for (const value of [2, 3]) {
      expect(await server.publish('acme', topic, { points: [{ value }] })).toBe(200);
    }
    await expect(widget, 'held, not lost').toHaveAttribute('data-held', '2');
    expect(await chartValues(page, topic)).toEqual([1]);
    await expect.poll(() => chartValues(page, topic), { timeout: 20_000 }).toEqual([1, 2, 3]);
    await expect(widget).toHaveAttribute('data-held', '0');
  } finally {
    await server.stop();
  }
});
