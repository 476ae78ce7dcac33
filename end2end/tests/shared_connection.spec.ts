import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { chartValues, createDashboard, widgetOf } from './support/dashboard';
import { freePort, OwnServer } from './support/server';
import { signIn } from './support/session';

// All tabs of one browser share one server connection: one tab leads (a Web Lock) and relays to
// the others over a BroadcastChannel.

/// A server of the test's own, with its metrics on a port of their own.
async function serverWithMetrics(env: Record<string, string> = {}) {
  const metricsPort = await freePort();
  const server = await OwnServer.create({ ...env, LIVEDASH_METRICS_ADDR: `127.0.0.1:${metricsPort}` });
  await server.start();
  /// `livedash_connections_open`: the WebSockets the server holds now.
  const connections = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('livedash_connections_open '));
    return Number(line?.split(' ')[1] ?? 0);
  };
  return { server, connections };
}

/// Opens `count` tabs of `context` on `path`, one after the other, each Live.
async function openTabs(context: BrowserContext, url: string, count: number): Promise<Page[]> {
  const tabs: Page[] = [];
  for (let i = 0; i < count; i++) {
    const tab = await context.newPage();
    await tab.goto(url);
    await expect(tab.getByRole('status')).toHaveAttribute('data-status', 'live');
    tabs.push(tab);
  }
  return tabs;
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/// Signs the context in and makes a dashboard of one line chart on `test/sequence`, whose points
/// the test publishes itself, numbered 1, 2, 3 …: `published()` is every point so far, in order.
async function sequenceDashboard(context: BrowserContext, server: OwnServer) {
  const setup = await context.newPage();
  await signIn(setup, 'ops@acme.test', server.url);
  const topic = 'test/sequence';
  const id = await createDashboard(setup, server.url, 'Sequence', [{ title: 'Sequence', kind: 'line_chart', topic }]);
  await setup.close();
  let next = 1;
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++, next++) {
      expect(await server.publish('acme', topic, { points: [{ ts: next, value: next }] })).toBe(200);
    }
  };
  return { topic, url: `${server.url}/d/${id}`, publish, published: () => upTo(next - 1) };
}

test('two tabs share one connection; closing the leading tab hands over without a point lost or repeated', async ({
  browser,
}) => {
  // Snapshots of 5 points: a tab that started over after the handover, instead of resuming from
  // where it stood, would show only the last five and this test would see the hole.
  const { server, connections } = await serverWithMetrics({ LIVEDASH_SNAPSHOT_POINTS: '5' });
  const context = await browser.newContext();
  try {
    const { topic, url, publish, published } = await sequenceDashboard(context, server);
    await publish(3);

    const [tabA] = await openTabs(context, url, 1);
    const tabB = await context.newPage();
    let socketOfB: number | undefined;
    tabB.on('websocket', () => (socketOfB ??= Date.now()));
    await tabB.goto(url);
    await expect(tabB.getByRole('status')).toHaveAttribute('data-status', 'live');
    // Its first snapshot, before more points come (published later, they would be snapshotted
    // with only the last five).
    await expect.poll(() => chartValues(tabB, topic)).toEqual(published());
    await publish(4);
    for (const tab of [tabA, tabB]) {
      await expect.poll(() => chartValues(tab, topic)).toEqual(published());
    }
    await expect.poll(connections, { message: 'one connection serves both tabs' }).toBe(1);
    expect(socketOfB, 'tab B follows tab A: no socket of its own').toBeUndefined();

    // The leading tab closes while points keep coming.
    const during = (async () => {
      for (let i = 0; i < 20; i++) {
        await publish(1);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const closedAt = Date.now();
    await tabA.close();
    await during;
    await publish(3);
    await expect.poll(() => chartValues(tabB, topic), { message: 'every point once, in order' }).toEqual(published());
    await expect(widgetOf(tabB, topic)).toHaveAttribute('data-gaps', '0');
    await expect(tabB.getByRole('status')).toHaveAttribute('data-status', 'live');
    expect(socketOfB, 'tab B took the lead and opened the connection').toBeDefined();
    console.log(`handover: tab B opened the shared socket ${socketOfB! - closedAt} ms after tab A closed`);
    await expect.poll(connections, { message: 'the old connection closed, the new one serves' }).toBe(1);
  } finally {
    await context.close();
    await server.stop();
  }
});

test('reloading the leading tab or the other one loses and repeats nothing in either', async ({ browser }) => {
  const { server, connections } = await serverWithMetrics({ LIVEDASH_SNAPSHOT_POINTS: '5' });
  const context = await browser.newContext();
  try {
    const { topic, url, publish, published } = await sequenceDashboard(context, server);
    await publish(3);
    const [tabA, tabB] = await openTabs(context, url, 2);
    // The follower, then the leader (the other tab takes the lead), then the new follower.
    for (const reloaded of [tabB, tabA, tabB]) {
      await expect.poll(() => chartValues(reloaded, topic)).toEqual(published());
      const during = publish(12);
      await reloaded.reload();
      await during;
      await expect(reloaded.getByRole('status')).toHaveAttribute('data-status', 'live');
    }
    await publish(4);
    for (const tab of [tabA, tabB]) {
      await expect.poll(() => chartValues(tab, topic), { message: 'every point once, in order' }).toEqual(published());
      await expect(widgetOf(tab, topic)).toHaveAttribute('data-gaps', '0');
    }
    await expect.poll(connections).toBe(1);
  } finally {
    await context.close();
    await server.stop();
  }
});

test('pausing live updates in one tab pauses only that tab, the leading one included', async ({ browser }) => {
  const { server } = await serverWithMetrics();
  const context = await browser.newContext();
  try {
    const setup = await context.newPage();
    await signIn(setup, 'ops@acme.test', server.url);
    await setup.close();
    const [tabA, tabB] = await openTabs(context, server.url, 2);
    const orders = (tab: Page) => widgetOf(tab, 'sales/orders');
    const updates = async (tab: Page) => Number(await orders(tab).getAttribute('data-updates'));
    const pill = (tab: Page) => tab.getByRole('status');

    for (const [paused, other] of [
      [tabB, tabA],
      [tabA, tabB],
    ]) {
      await paused.getByRole('switch', { name: 'Live updates' }).click();
      await expect(pill(paused)).toHaveAttribute('data-status', 'paused');
      const held = await updates(paused);
      const before = await updates(other);
      // The demo feed publishes an order a second: the other tab keeps taking them.
      await expect.poll(() => updates(other)).toBeGreaterThan(before + 1);
      await expect(pill(other)).toHaveAttribute('data-status', 'live');
      expect(await updates(paused), 'the paused tab applied nothing').toBe(held);
      await paused.getByRole('switch', { name: 'Live updates' }).click();
      await expect(pill(paused)).toHaveAttribute('data-status', 'live');
      await expect.poll(() => updates(paused)).toBeGreaterThan(held);
    }
  } finally {
    await context.close();
    await server.stop();
  }
});

test('more tabs than the per-user connection limit all go Live on one connection', async ({ browser }) => {
  const { server, connections } = await serverWithMetrics({ LIVEDASH_MAX_CONNECTIONS_PER_USER: '2' });
  const context = await browser.newContext();
  try {
    const setup = await context.newPage();
    await signIn(setup, 'ops@acme.test', server.url);
    await setup.close();
    const tabs = await openTabs(context, server.url, 4);
    await expect.poll(connections).toBe(1);
    for (const tab of tabs) {
      const before = Number(await widgetOf(tab, 'sales/orders').getAttribute('data-updates'));
      await expect.poll(async () => Number(await widgetOf(tab, 'sales/orders').getAttribute('data-updates'))).toBeGreaterThan(before);
    }
  } finally {
    await context.close();
    await server.stop();
  }
});

test('without Web Locks the tabs choose a leader over the BroadcastChannel, and hand over when it closes', async ({
  browser,
}) => {
  const { server, connections } = await serverWithMetrics();
  const context = await browser.newContext();
  // As in a browser without the API, or on plain HTTP away from localhost (not a secure context).
  await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
  try {
    const setup = await context.newPage();
    await signIn(setup, 'ops@acme.test', server.url);
    await setup.close();
    const [first, second] = await openTabs(context, server.url, 2);
    await expect.poll(connections, { message: 'one connection for both tabs' }).toBe(1);
    const updates = async () => Number(await widgetOf(second, 'sales/orders').getAttribute('data-updates'));
    await first.close();
    const before = await updates();
    await expect.poll(updates, { message: 'the other tab took the lead and keeps updating' }).toBeGreaterThan(before + 1);
    await expect(second.getByRole('status')).toHaveAttribute('data-status', 'live');
    await expect.poll(connections).toBe(1);
  } finally {
    await context.close();
    await server.stop();
  }
});

test('without Web Locks a tab that stops answering heartbeats is let go, and follows again once it answers', async ({
  browser,
}) => {
  const { server } = await serverWithMetrics();
  const context = await browser.newContext();
  await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
  try {
    const setup = await context.newPage();
    await signIn(setup, 'ops@acme.test', server.url);
    const topic = 'test/only-b';
    const id = await createDashboard(setup, server.url, 'Only B', [{ title: 'Only B', kind: 'line_chart', topic }]);
    await setup.close();
    // What the leading tab's socket asks of the server.
    const leader = await context.newPage();
    const sent: string[] = [];
    leader.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));
    await leader.goto(server.url);
    await expect(leader.getByRole('status')).toHaveAttribute('data-status', 'live');
    const follower = await context.newPage();
    await follower.goto(`${server.url}/d/${id}`);
    await expect(follower.getByRole('status')).toHaveAttribute('data-status', 'live');
    const frames = (kind: string) => sent.filter((f) => f.includes(`"${kind}"`) && f.includes(`"${topic}"`)).length;
    await expect.poll(() => frames('subscribe'), { message: 'the hub follows the topic for tab B' }).toBe(1);

    // Tab B falls silent on the channel (hung, or crashed without a word): it answers no
    // heartbeat, and the hub lets go of what only it followed.
    await follower.evaluate(() => {
      const post = BroadcastChannel.prototype.postMessage;
      (window as any).restorePost = () => (BroadcastChannel.prototype.postMessage = post);
      BroadcastChannel.prototype.postMessage = () => {};
    });
    await expect.poll(() => frames('unsubscribe'), { message: 'swept after two heartbeats unanswered', timeout: 20_000 }).toBe(1);

    // It answers again; the hub no longer knows it and asks every tab to say what it follows:
    // tab B is served again.
    await follower.evaluate(() => (window as any).restorePost());
    await expect.poll(() => frames('subscribe'), { timeout: 20_000 }).toBe(2);
    const widget = widgetOf(follower, topic);
    const before = Number(await widget.getAttribute('data-updates'));
    expect(await server.publish('acme', topic, { points: [{ ts: Date.now(), value: 1 }] })).toBe(200);
    await expect.poll(async () => Number(await widget.getAttribute('data-updates'))).toBeGreaterThan(before);
  } finally {
    await context.close();
    await server.stop();
  }
});

test('without Web Locks and BroadcastChannel every tab keeps a connection of its own', async ({ browser }) => {
  const { server, connections } = await serverWithMetrics();
  const context = await browser.newContext();
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
    // @ts-expect-error: as in a browser without it
    delete window.BroadcastChannel;
  });
  try {
    const setup = await context.newPage();
    await signIn(setup, 'ops@acme.test', server.url);
    await setup.close();
    await openTabs(context, server.url, 2);
    await expect.poll(connections).toBe(2);
  } finally {
    await context.close();
    await server.stop();
  }
});
