import { expect, test } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { widgetOf } from './support/dashboard';
import { freePort, OwnServer } from './support/server';
import { StaticSite } from './support/static_site';

/// Builds the static front end (Trunk) into `dist`, for the server at `serverUrl`.
async function buildStatic(dist: string, serverUrl: string): Promise<void> {
  const build = spawn(path.resolve('../scripts/build-static'), ['--dist', dist], {
    env: { ...process.env, LIVEDASH_SERVER_URL: serverUrl },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const code = await new Promise((resolve) => build.once('exit', resolve));
  expect(code, 'scripts/build-static succeeded').toBe(0);
}

// The static build is the same app rendered in the browser, served by any web server of the same
// site as the livedash server (here another port of the same host), which answers it with CORS.
test('the static build, served from another port of the same host, signs in and goes Live; a cross-site copy is refused', async ({
  browser,
}) => {
  // A first build compiles the app's entry point and links it; later ones take seconds.
  test.setTimeout(600_000);
  const [serverPort, sitePort] = [await freePort(), await freePort()];
  const serverUrl = `http://127.0.0.1:${serverPort}`;
  const dist = await mkdtemp(path.join(os.tmpdir(), 'livedash-static-'));
  await buildStatic(dist, serverUrl);
  // Same site: 127.0.0.1 on another port. Cross-site: `localhost` is another site than 127.0.0.1.
  const site = await StaticSite.serve(dist, '127.0.0.1', sitePort);
  const crossSite = `http://localhost:${sitePort}`;
  const server = await OwnServer.create({ LIVEDASH_ALLOWED_ORIGINS: `${serverUrl},${site.url}` }, serverPort);
  await server.start();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(site.url);
    // Signed out: the app itself sends the visitor to its sign-in form.
    await expect(page).toHaveURL(new RegExp(`^${site.url}/login`));
    await page.getByLabel('E-mail').fill('ops@acme.test');
    await page.getByLabel('Password').fill('livedash-demo');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${site.url}/`);
    await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
    await expect(page.locator('.user-email')).toHaveText('ops@acme.test');
    const orders = widgetOf(page, 'sales/orders');
    const before = Number(await orders.getAttribute('data-updates'));
    await expect.poll(async () => Number(await orders.getAttribute('data-updates'))).toBeGreaterThan(before + 1);
    await page.screenshot({ path: 'artifacts/static_build.png', fullPage: true });
    expect(errors).toEqual([]);

    // The same files from another site get no answer they may read, and no socket.
    const stranger = await context.newPage();
    await stranger.goto(`${crossSite}/login`);
    await stranger.getByLabel('E-mail').fill('ops@acme.test');
    await stranger.getByLabel('Password').fill('livedash-demo');
    await stranger.getByRole('button', { name: 'Sign in' }).click();
    await expect(stranger.getByRole('alert')).toBeVisible();
    await expect(stranger).toHaveURL(new RegExp(`^${crossSite}/login`));
    const refused = await stranger.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const socket = new WebSocket(url.replace('http', 'ws') + '/api/ws');
          socket.onopen = () => resolve('opened');
          socket.onclose = () => resolve('refused');
        }),
      serverUrl,
    );
    expect(refused, 'the upgrade from a cross-site page is refused').toBe('refused');
  } finally {
    await context.close();
    await site.close();
    await server.stop();
    await rm(dist, { recursive: true, force: true });
  }
});
