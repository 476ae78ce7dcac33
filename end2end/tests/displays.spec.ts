import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { createDashboard, createDisplay, widgetOf } from './support/dashboard';
import { usedHeapMb } from './support/heap';
import { FaultyNetwork } from './support/network';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

/// A screen with nothing but a display's link: a browser context of its own, nobody signed in.
async function screen(browser: Browser, link: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1600, height: 900 }, colorScheme })).newPage();
  await page.goto(link);
  return page;
}

async function tile(page: Page, value: string) {
  await expect(widgetOf(page, 'e2e/kpi').locator('.kpi[data-key="orders"] .kpi-value')).toHaveText(value);
}

test('an admin makes two displays; each screen shows its dashboard live without a sign-in, and one revoked while live says so while the other goes on', async ({
  page,
  browser,
}) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [
      { title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' },
      { title: 'Orders per second', kind: 'line_chart', topic: 'e2e/orders' },
    ]);
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 40 } })).toBe(200);
    for (const value of [55, 61, 48]) expect(await server.publish('acme', 'e2e/orders', { points: [{ value }] })).toBe(200);

    // One display made in the editor: its link is shown once.
    await page.goto(`${server.url}/d/${id}`);
    await page.getByRole('button', { name: 'Edit dashboard' }).click();
    await page.getByText(/^Wall displays/).click();
    const form = page.getByRole('form', { name: 'New wall display' });
    await form.getByLabel('Name').fill('Left wall');
    await form.getByRole('button', { name: 'Create display' }).click();
    const shownLink = page.locator('.display-link code');
    await expect(shownLink).toHaveText(new RegExp(`^${server.url}/display/\\d+#[0-9a-f]{32}$`));
    const left = (await shownLink.textContent())!;
    await page.screenshot({ path: 'artifacts/displays-editor.png', fullPage: true });
    // The other through the API, light.
    const made = await createDisplay(page, server.url, { name: 'Right wall', dashboards: [id], theme: 'light' });
    const right = `${server.url}${made.link}`;

    const a = await screen(browser, left, 'light');
    const b = await screen(browser, right, 'dark');
    for (const s of [a, b]) {
      await expect(s.locator('.display-screen')).toHaveAttribute('data-status', 'live');
      await expect(s.getByRole('heading', { level: 1 })).toHaveText('Floor');
      await tile(s, '40');
      // The secret is gone from the address bar, and there is nothing to click.
      expect(new URL(s.url()).hash).toBe('');
      for (const control of await s.locator('.mode-select, .widget-refresh').all()) await expect(control).toBeHidden();
    }
    // Each as its display chose, whatever the screen's system says.
    expect(await a.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    expect(await b.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
    await a.screenshot({ path: 'artifacts/display-dark.png' });
    await b.screenshot({ path: 'artifacts/display-light.png' });

    // Who's online lists the two screens apart from the people.
    const operations = await page.context().newPage();
    await operations.goto(server.url);
    const online = operations.locator('section[data-kind="active_users"]');
    await expect(online.locator('.displays-online li strong')).toHaveText(['Left wall', 'Right wall']);
    await expect(online.locator('.person', { hasText: 'wall' })).toHaveCount(0);
    await operations.close();

    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 42 } })).toBe(200);
    await tile(a, '42');
    await tile(b, '42');

    // Left wall revoked while live: it says so at once; the right wall goes on.
    await page.getByRole('button', { name: 'Revoke Left wall' }).click();
    await expect(a.getByRole('alert')).toHaveText('This display was revoked');
    await a.screenshot({ path: 'artifacts/display-revoked.png' });
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 43 } })).toBe(200);
    await tile(b, '43');
    await expect(page.locator('.display-row', { hasText: 'revoked' })).toHaveCount(1);
    await expect(page.locator('.display-row').filter({ hasText: 'Revoke Right wall' })).toContainText(
      /seen just now from 127\.0\.0\.1/,
    );
    // Its link is dead too.
    const again = await screen(browser, left);
    await expect(again.getByRole('alert')).toHaveText(/This display link is not valid/);
  } finally {
    await server.stop();
  }
});

test('a display never gives up: over a server restart and a 2-minute outage it says how old its data is, and recovers by itself', async ({
  page,
  browser,
}) => {
  test.setTimeout(420_000);
  const server = await OwnServer.create();
  await server.start();
  const network = await FaultyNetwork.create(server.port);
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [{ title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' }]);
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 40 } })).toBe(200);
    const made = await createDisplay(page, server.url, { name: 'Wall', dashboards: [id] });
    const wall = await screen(browser, `${network.url}${made.link}`);
    const display = wall.locator('.display-screen');
    await expect(display).toHaveAttribute('data-status', 'live');
    await tile(wall, '40');

    // A restart: the in-memory topics are gone, the display's session is not.
    await server.stop();
    await expect(display).not.toHaveAttribute('data-status', 'live');
    await server.start();
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 41 } })).toBe(200);
    await expect(display).toHaveAttribute('data-status', 'live', { timeout: 60_000 });
    await tile(wall, '41');

    // Two minutes without a network: past the display's minute it says so across the screen, and
    // long after a person's page would have gone Offline it is still trying.
    network.set('cut');
    const banner = wall.locator('.display-stale');
    await expect(banner).toHaveText(/^Data is \d+ s old — reconnecting$/, { timeout: 90_000 });
    await wall.screenshot({ path: 'artifacts/display-stale.png' });
    await expect(banner).toHaveText(/^Data is 2 min old — reconnecting$/, { timeout: 90_000 });
    await expect(display).not.toHaveAttribute('data-status', 'offline');
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 44 } })).toBe(200);
    network.set('none');
    // Back within the backoff's cap (30 s) plus a connection: the banner goes, the data is current.
    await expect(display).toHaveAttribute('data-status', 'live', { timeout: 60_000 });
    await expect(banner).toHaveCount(0);
    await tile(wall, '44');
  } finally {
    await network.close();
    await server.stop();
  }
});

test('a screen that holds no display session asks for its link, and a display session on any other page is sent to its own', async ({
  page,
  browser,
}) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [{ title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' }]);
    const plain = await screen(browser, `${server.url}/display/1`);
    await expect(plain.getByRole('alert')).toHaveText("This screen has no display session: open the display's link.");
    // A person's session on a display page is no display's.
    const mine = await page.context().newPage();
    await mine.goto(`${server.url}/display/1`);
    await expect(mine.getByRole('alert')).toHaveText("This screen has no display session: open the display's link.");
    // A display session sent to any other page comes back to its own.
    const made = await createDisplay(page, server.url, { name: 'Wall', dashboards: [id] });
    const wall = await screen(browser, `${server.url}${made.link}`);
    await expect(wall.locator('.display-screen')).toHaveAttribute('data-status', 'live');
    await wall.goto(`${server.url}/d/${id}`);
    await expect(wall).toHaveURL(`${server.url}/display/${made.id}`);
    await expect(wall.locator('.display-screen')).toHaveAttribute('data-status', 'live');
  } finally {
    await server.stop();
  }
});

test('a display runs a simulated day (its clock advanced 10 minutes at a time, data published at every step) with its memory flat', async ({
  page,
  browser,
}) => {
  test.setTimeout(420_000);
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const floor = await createDashboard(page, server.url, 'Floor', [{ title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' }]);
    const sales = await createDashboard(page, server.url, 'Sales', [
      { title: 'Orders', kind: 'kpi_tiles', topic: 'e2e/kpi' },
      { title: 'Orders per second', kind: 'line_chart', topic: 'e2e/orders' },
    ]);
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 1 } })).toBe(200);
    const made = await createDisplay(page, server.url, { name: 'Wall', dashboards: [floor, sales], rotateSecs: 7 });
    // The screen's timers and clock are Playwright's: a day passes in minutes of real time. Its
    // network is real.
    const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
    const wall = await context.newPage();
    await wall.clock.install();
    await wall.goto(`${server.url}${made.link}`);
    const display = wall.locator('.display-screen');
    await expect(display).toHaveAttribute('data-status', 'live');
    const step = async (n: number) => {
      expect(await server.publish('acme', 'e2e/kpi', { values: { orders: n } })).toBe(200);
      expect(await server.publish('acme', 'e2e/orders', { points: [{ value: n % 100 }] })).toBe(200);
      await wall.clock.fastForward('10:00');
      await expect(display).toHaveAttribute('data-status', 'live');
      await expect(widgetOf(wall, 'e2e/kpi').locator('.kpi[data-key="orders"] .kpi-value').first()).toHaveText(String(n));
    };
    for (let n = 2; n < 8; n++) await step(n); // warm up: both dashboards shown, every timer run
    const before = await usedHeapMb(wall);
    const titles = new Set<string>();
    const steps = 6 * 24;
    for (let n = 8; n < 8 + steps; n++) {
      await step(n);
      titles.add((await wall.getByRole('heading', { level: 1 }).textContent()) ?? '');
    }
    const after = await usedHeapMb(wall);
    console.log(`simulated day: ${steps} steps of 10 min, JS heap ${before.toFixed(2)} MB → ${after.toFixed(2)} MB`);
    expect([...titles].sort(), 'the rotation went on all day').toEqual(['Floor', 'Sales']);
    expect(after - before, 'the heap stays flat').toBeLessThan(5);
    await context.close();
  } finally {
    await server.stop();
  }
});

test('a display reloads itself after a deploy: a new build of the site reaches the wall without anyone touching it', async ({
  page,
  browser,
}) => {
  const server = await OwnServer.create();
  await server.start();
  const site = await mkdtemp(path.join(os.tmpdir(), 'livedash-deployed-site-'));
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Floor', [{ title: 'Throughput', kind: 'kpi_tiles', topic: 'e2e/kpi' }]);
    const made = await createDisplay(page, server.url, { name: 'Wall', dashboards: [id] });
    const wall = await (await browser.newContext()).newPage();
    await wall.clock.install(); // the minute between two checks of what it shows passes at once
    await wall.goto(`${server.url}${made.link}`);
    const display = wall.locator('.display-screen');
    await expect(display).toHaveAttribute('data-status', 'live');
    // The build a page runs: its package's hashed directory, named in the page's HTML.
    // (Asked while the page reloads, it answers nothing, and is asked again.)
    const build = () =>
      wall
        .evaluate(() => document.documentElement.outerHTML.match(/assets\/([0-9a-f]+)\/pkg/)?.[1])
        .catch(() => undefined);
    const before = await build();
    expect(before).toMatch(/^[0-9a-f]+$/);

    // A deploy: the same site with one more file in its package, so another build.
    await server.stop();
    await cp(process.env.LEPTOS_SITE_ROOT ?? '../target/site', site, { recursive: true });
    await writeFile(path.join(site, 'pkg', 'deployed.txt'), `deployed at ${Date.now()}`);
    server.useSite(site);
    await server.start();
    await expect(display).toHaveAttribute('data-status', 'live', { timeout: 60_000 });
    await wall.clock.fastForward('01:05');
    await expect
      .poll(async () => {
        const now = await build();
        return now !== undefined && now !== before;
      }, { message: 'the wall runs the new build' })
      .toBe(true);
    await expect(wall.locator('.display-screen')).toHaveAttribute('data-status', 'live');
    expect(await server.publish('acme', 'e2e/kpi', { values: { orders: 9 } })).toBe(200);
    await tile(wall, '9');
  } finally {
    await server.stop();
    await rm(site, { recursive: true, force: true });
  }
});
