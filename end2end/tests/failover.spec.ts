import { expect, test } from '@playwright/test';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RoundRobin } from './support/balancer';
import { widgetState } from './support/dashboard';
import { expectLiveAgain } from './support/pill';
import { OwnRedis } from './support/redis';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

const WS = 'GET /api/ws';

test('behind a round-robin balancer, a node that stops hands its viewer to another node: not a point lost or repeated', async ({
  page,
}) => {
  const redis = await OwnRedis.start();
  // One deployment: a Redis, a store and a session secret for every node. The demo feed runs on a
  // node of its own, outside the balancer, so stopping either viewer's node leaves it publishing.
  const shared = {
    LIVEDASH_REDIS_URL: redis.url,
    LIVEDASH_SESSION_SECRET: 'the secret every node of this e2e deployment shares',
    LIVEDASH_DATABASE: path.join(os.tmpdir(), `livedash-e2e-nodes-${process.pid}-${Date.now()}.db`),
  };
  const nodes: OwnServer[] = [];
  let balancer: RoundRobin | undefined;
  try {
    const feed = await OwnServer.create({ ...shared, LIVEDASH_DEMO: 'on' });
    nodes.push(feed);
    const viewers = [await OwnServer.create({ ...shared, LIVEDASH_DEMO: 'off' }), await OwnServer.create({ ...shared, LIVEDASH_DEMO: 'off' })];
    await feed.start(); // first: it makes the demo accounts the others read
    for (const node of viewers) {
      nodes.push(node);
      await node.start();
    }
    balancer = await RoundRobin.create(viewers.map((n) => n.port));

    // Signing in, the page and the socket each go to whichever node is next.
    await signIn(page, 'ops@acme.test', balancer.url);
    await page.goto(balancer.url);
    const pill = page.getByRole('status');
    const widget = page.locator('[data-topic="sales/orders"]');
    await expect(pill).toHaveAttribute('data-status', 'live');
    await expect(widget).toHaveAttribute('data-offset', /^\d+$/);
    const before = balancer.backendOf(WS)!;
    const doomed = viewers.find((n) => n.port === before)!;

    await page.evaluate(() => {
      const seen: string[] = ((window as any).__statuses = []);
      const pill = document.querySelector('[data-status]')!;
      new MutationObserver(() => seen.push(pill.getAttribute('data-status')!)).observe(pill, { attributes: true });
    });
    const { offset: startOffset, points: startPoints, updates: startUpdates } = await widgetState(page, 'sales/orders');

    await doomed.stop(); // SIGTERM, as on a deploy: its sockets close with 1001
    await expect.poll(() => page.evaluate(() => (window as any).__statuses as string[])).toContain('reconnecting');
    await expectLiveAgain(page);
    const after = balancer.backendOf(WS);
    expect(after, 'the socket is on the other node now').not.toBe(before);

    // The points published while it moved are replayed from Redis by the new node: every offset
    // once, no gap announced.
    await expect.poll(async () => Number(await widget.getAttribute('data-offset'))).toBeGreaterThan(startOffset + 4);
    const state = await widgetState(page, 'sales/orders');
    expect(state.gaps, 'nothing was lost, so no gap').toBe(0);
    expect(state.updates - startUpdates, 'one applied update per offset').toBe(state.offset - startOffset);
    expect(state.times.length).toBe(Math.min(120, startPoints + state.updates - startUpdates));
    expect(state.times.every((t, i) => i === 0 || t > state.times[i - 1]), 'no repeated point').toBe(true);
    await page.screenshot({ path: 'artifacts/failover.png' });
    console.log(`failover: socket moved from :${before} to :${after}, ${state.offset - startOffset} offsets since, none lost`);
  } finally {
    await balancer?.close();
    for (const node of nodes) await node.stop();
    await redis.stop();
    for (const suffix of ['', '-wal', '-shm']) await rm(shared.LIVEDASH_DATABASE + suffix, { force: true });
  }
});
