import { expect, test, type CDPSession, type Page } from '@playwright/test';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

/// What the network carried while `visit` ran: bytes on the wire (compressed, with headers) and,
/// per request, whether it came from the browser's cache.
async function measure(page: Page, cdp: CDPSession, visit: () => Promise<unknown>) {
  const urls = new Map<string, string>();
  const cached = new Set<string>();
  let bytes = 0;
  const onRequest = (e: any) => urls.set(e.requestId, e.request.url);
  const onCached = (e: any) => cached.add(urls.get(e.requestId) ?? e.requestId);
  const onFinished = (e: any) => (bytes += e.encodedDataLength);
  // From the memory cache: requestServedFromCache; from the disk cache: the response says so.
  const onResponse = (e: any) => e.response.fromDiskCache && cached.add(e.response.url);
  cdp.on('Network.requestWillBeSent', onRequest);
  cdp.on('Network.requestServedFromCache', onCached);
  cdp.on('Network.responseReceived', onResponse);
  cdp.on('Network.loadingFinished', onFinished);
  await visit();
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
  cdp.off('Network.requestWillBeSent', onRequest);
  cdp.off('Network.requestServedFromCache', onCached);
  cdp.off('Network.responseReceived', onResponse);
  cdp.off('Network.loadingFinished', onFinished);
  return { bytes, urls: [...urls.values()], cached };
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

// Prints figures (bytes and time are not pass/fail); fails only if files are sent uncompressed or
// fetched again on a repeat visit, which is what the cache headers are for.
test('figures: first and repeat visit bytes, and reload → Live', async ({ page }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');

    const first = await measure(page, cdp, () => page.goto(`${server.url}/`));
    const bundle = first.urls.find((u) => u.endsWith('.wasm'))!;
    expect(bundle, 'the bundle is linked by a URL that names its content').toMatch(/\/assets\/[0-9a-f]{16}\/pkg\//);
    const wasm = await page.request.get(bundle, { headers: { 'accept-encoding': 'br, gzip' } });
    expect(wasm.headers()['content-encoding']).toBe('br');
    expect(wasm.headers()['cache-control']).toContain('immutable');

    const repeat = await measure(page, cdp, () => page.goto(`${server.url}/`));
    for (const url of repeat.urls.filter((u) => u.includes('/assets/'))) {
      expect(repeat.cached.has(url), `${url} comes from the cache on a repeat visit`).toBe(true);
    }

    const reloads: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      await page.reload();
      await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
      reloads.push(Date.now() - started);
    }
    reloads.sort((a, b) => a - b);
    console.log(
      `figures: first visit ${kb(first.bytes)} over ${first.urls.length} requests; repeat visit ` +
        `${kb(repeat.bytes)} (${repeat.cached.size} files from the cache); reload → Live median ` +
        `${reloads[2]} ms, max ${reloads[4]} ms over 5 reloads`,
    );
  } finally {
    await server.stop();
  }
});
