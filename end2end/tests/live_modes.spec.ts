import { expect, test, type Page } from '@playwright/test';
import { widgetState } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

/// How long a page may take to learn of a switch it cannot be pushed (leaving polling or off): its
/// next poll or mode check, 30 s away at most (what the pill's tooltip announces), plus one
/// connection attempt on a loaded machine.
const NEXT_CHECK_MS = 30_000 + 15_000;

/// The admin's operator control, switched through the page as an administrator does.
async function choose(admin: Page, mode: 'live' | 'polling' | 'off') {
  const control = admin.getByLabel('Live mode for this workspace');
  await control.selectOption(mode);
  // The control says "Saving…" from the change on, and what the server answered once it has.
  await expect(admin.locator('.live-mode-message')).toHaveText(`Saved: ${LABELS[mode]}`);
  await expect(control).toHaveAttribute('data-mode', mode);
}

const LABELS = { live: 'Live', polling: 'Polling only', off: 'Live updates off' };

const chart = (page: Page) => widgetState(page, 'sales/orders');

test('an administrator backs the workspace out to polling, turns it off and live again, and an open page follows every switch without losing a point', async ({
  browser,
}) => {
  test.setTimeout(480_000);
  const server = await OwnServer.create();
  await server.start();
  const adminContext = await browser.newContext();
  const viewerContext = await browser.newContext();
  try {
    const admin = await adminContext.newPage();
    await signIn(admin, 'ops@acme.test', server.url);
    await admin.goto(server.url);
    const viewer = await viewerContext.newPage();
    await signIn(viewer, 'viewer@acme.test', server.url);
    await viewer.goto(server.url);
    const pill = viewer.getByRole('status');
    await expect(pill).toHaveAttribute('data-status', 'live');
    await expect(viewer.getByLabel('Live mode for this workspace'), 'only admins have the control').toHaveCount(0);
    await expect(admin.getByLabel('Live mode for this workspace')).toHaveAttribute('data-mode', 'live');
    await expect(viewer.locator('[data-topic="sales/orders"]')).toHaveAttribute('data-offset', /^\d+$/);
    const start = await chart(viewer);

    // live → polling: the open socket is closed at once and the page polls from where it stood.
    await choose(admin, 'polling');
    await expect(pill).toHaveAttribute('data-status', 'polling');
    await expect(pill).toHaveAttribute('title', /administrator set this workspace's dashboards to polling/);
    await expect(pill).not.toHaveAttribute('data-probe-at', /./);
    let sockets = 0;
    viewer.on('websocket', () => (sockets += 1));
    const firstPoll = await chart(viewer);
    // The next regular poll comes 30 s later; a probe of the WebSocket would have come after 5 s.
    await expect
      .poll(async () => (await chart(viewer)).offset, { timeout: NEXT_CHECK_MS })
      .toBeGreaterThan(firstPoll.offset);
    expect(sockets, 'no faster transport is probed while the operator chose polling').toBe(0);
    await viewer.screenshot({ path: 'artifacts/live-mode-polling.png' });
    await admin.screenshot({ path: 'artifacts/live-mode-control.png' });

    // polling → live: the next poll answer says so, and the page climbs back to the WebSocket.
    await choose(admin, 'live');
    await expect(pill).toHaveAttribute('data-status', 'live', { timeout: NEXT_CHECK_MS });
    const relive = await chart(viewer);
    await expect.poll(async () => (await chart(viewer)).offset).toBeGreaterThan(relive.offset + 2);

    // live → off: closed at once; nothing is asked for until the mode check.
    await choose(admin, 'off');
    await expect(pill).toHaveAttribute('data-status', 'live-off');
    await expect(pill).toHaveText('Live updates off');
    await expect(pill).toHaveAttribute('title', /turned live updates off/);
    const frozen = await chart(viewer);
    // The page's first mode check (it asks `/api/auth/me` every 30 s) hears that it is still off;
    // the demo feed published a point a second meanwhile, and none of them arrived.
    const check = await viewer.waitForResponse((r) => r.url().endsWith('/api/auth/me'), { timeout: NEXT_CHECK_MS });
    expect(((await check.json()) as { liveMode: string }).liveMode).toBe('off');
    await expect(pill).toHaveAttribute('data-status', 'live-off');
    expect((await chart(viewer)).offset, 'nothing arrives while off').toBe(frozen.offset);

    // off → live: the next mode check hears it, and the page comes back from its positions with
    // everything published while it was off.
    await choose(admin, 'live');
    await expect(pill).toHaveAttribute('data-status', 'live', { timeout: NEXT_CHECK_MS });
    await expect.poll(async () => (await chart(viewer)).offset).toBeGreaterThan(frozen.offset + 20);

    // live → off → polling: from off straight to polls, again within one mode check.
    await choose(admin, 'off');
    await expect(pill).toHaveAttribute('data-status', 'live-off');
    await choose(admin, 'polling');
    await expect(pill).toHaveAttribute('data-status', 'polling', { timeout: NEXT_CHECK_MS });
    // polling → off: the next poll is refused.
    await choose(admin, 'off');
    await expect(pill).toHaveAttribute('data-status', 'live-off', { timeout: NEXT_CHECK_MS });
    await choose(admin, 'live');
    await expect(pill).toHaveAttribute('data-status', 'live', { timeout: NEXT_CHECK_MS });

    const end = await chart(viewer);
    expect(end.gaps, 'positions carried over at every switch').toBe(0);
    expect(end.updates - start.updates, 'one applied update per offset').toBe(end.offset - start.offset);
    expect(end.times.every((t, i) => i === 0 || t > end.times[i - 1]), 'no repeated point').toBe(true);

    // Every switch is audited (the audit is written in the background: asked until it is there).
    const switches = async () => {
      const answer = await admin.request.get(`${server.url}/api/admin/audit?limit=1000`);
      const rows = (await answer.json()) as { action: string; detail: string }[];
      return rows.filter((row) => row.action === 'live_mode').map((row) => row.detail);
    };
    await expect.poll(async () => (await switches()).length).toBe(8);
    expect((await switches()).filter((d) => /^live → polling; [1-9]\d* connection\(s\) closed$/.test(d))).toHaveLength(1);
  } finally {
    await adminContext.close();
    await viewerContext.close();
    await server.stop();
  }
});
