import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { chartValues, createDashboard, widgetOf } from './support/dashboard';
import { usedHeapMb } from './support/heap';
import { FaultyNetwork, type Fault } from './support/network';
import { readPill } from './support/pill';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

// A seeded random schedule of what users and networks do — network faults through a programmable
// proxy, clicks, mode changes, pauses, tabs opened, closed and reloaded, dashboard switches, server
// restarts — and after each healing period, the client's promises checked against the server's
// truth: every tab says it receives, and every widget shows the latest point within one interval
// of its mode, with no point twice. The seed is printed; `CHAOS_SEED=… ` replays a schedule.
//
// `CHAOS_STEPS` (default 12) bounds a run by steps, `CHAOS_MINUTES` by time (scripts/soak).

// No Playwright trace: these pages hold streams open through a proxy that stalls them, and
// zipping a trace whose network resources are still being written fails the test on a loaded
// machine ("file data stream has unexpected number of bytes"), whatever the page did. The
// screenshots and the printed steps say what happened.
test.use({ trace: 'off' });

const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const steps = Number(process.env.CHAOS_STEPS ?? 12);
const minutes = Number(process.env.CHAOS_MINUTES ?? 0);
/// Steps between two checks.
const PERIOD = 4;
const HEAP_LIMIT_MB = 64;
const HEARTBEAT_SECS = 5;

/// mulberry32: a small PRNG whose whole state is the seed.
/// Loads the dashboard as a user would once the network is back. The page may be on its way back
/// by itself meanwhile: a load it began on the dead network (a reload under a black hole) failing
/// just then, or the app reloading a page whose files did not arrive. Such a navigation interrupts
/// this one; the test then lets it finish and looks again, and loads once more only if the page is
/// still not the dashboard (found on a loaded machine, seed 1946776178).
async function loadAgain(page: Page, url: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (error) {
      if (attempt >= 5 || !String(error).includes('interrupted by another navigation')) throw error;
      await page.waitForLoadState('load').catch(() => {});
      if ((await page.locator('[role="status"][data-status]').count()) > 0) return;
    }
  }
}

function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
  };
}

type Widget = { title: string; kind: 'line_chart' | 'bar_chart'; topic: string; defaultMode: string };
const MODES = ['live', '5s', '15s'] as const;
const INTERVAL: Record<string, number> = { live: 0, '5s': 5, '15s': 15, '30s': 30, '1min': 60 };

test(`chaos: a seeded schedule of faults and user actions never leaves a widget stale while the page says live`, async ({
  browser,
}) => {
  test.setTimeout(minutes > 0 ? (minutes + 10) * 60_000 : 600_000);
  console.log(`chaos seed ${seed} (replay with CHAOS_SEED=${seed})`);
  const random = rng(seed);
  const server = await OwnServer.create({
    LIVEDASH_HEARTBEAT_SECS: String(HEARTBEAT_SECS),
    LIVEDASH_SSE_HEARTBEAT_SECS: String(HEARTBEAT_SECS),
    LIVEDASH_SNAPSHOT_POINTS: '60',
  });
  await server.start();
  const network = await FaultyNetwork.create(server.port);
  const context = await browser.newContext();
  const figures = { steps: 0, faults: 0, actions: 0, restarts: 0, checks: 0, worstHealMs: 0, heapMb: 0 };
  const healTimes: Record<string, number> = {};

  // The truth: the test publishes numbered points (value = number) straight to the server.
  const topics = ['chaos/a', 'chaos/b', 'chaos/c'];
  const last: Record<string, number> = Object.fromEntries(topics.map((t) => [t, 0]));
  let publishing = true;
  const publisher = (async () => {
    let n = 0;
    while (publishing) {
      const topic = topics[n % topics.length];
      const value = last[topic] + 1;
      try {
        if ((await server.publish('acme', topic, { points: [{ ts: value, value }] })) === 200) last[topic] = value;
      } catch {
        // the server is restarting: the point was not published
      }
      n += 1;
      await new Promise((r) => setTimeout(r, 150));
    }
  })();

  try {
    const setup = await context.newPage();
    await signIn(setup, 'ops@acme.test', server.url);
    const dashboards: { id: number; widgets: Widget[] }[] = [];
    for (const [title, widgets] of [
      ['Chaos A', [
        { title: 'A line', kind: 'line_chart', topic: 'chaos/a', defaultMode: 'live' },
        { title: 'B bars', kind: 'bar_chart', topic: 'chaos/b', defaultMode: '5s' },
      ]],
      ['Chaos B', [
        { title: 'A again', kind: 'line_chart', topic: 'chaos/a', defaultMode: 'live' },
        { title: 'C line', kind: 'line_chart', topic: 'chaos/c', defaultMode: 'live' },
      ]],
    ] as [string, Widget[]][]) {
      dashboards.push({ id: await createDashboard(setup, server.url, title, widgets), widgets });
    }
    await setup.close();

    // Each tab: which dashboard it shows, and whether its live switch is off. (Widget modes are
    // the user's, saved on the server: the check reads each widget's from the page.)
    type Tab = { page: Page; dashboard: number; paused: boolean };
    const tabs: Tab[] = [];
    const open = async (dashboard: number) => {
      const page = await context.newPage();
      tabs.push({ page, dashboard, paused: false });
      // On a dead network the page may not load: the check opens it again once healed.
      await page.goto(`${network.url}/d/${dashboards[dashboard].id}`, { timeout: 20_000 }).catch(() => {});
    };
    await open(0);

    const faults: (() => string)[] = [
      () => (network.set('cut'), 'cut'),
      () => (network.set('blackhole'), 'blackhole'),
      () => (network.set('latency'), 'latency'),
      () => ((network.refuseUpgrades = true), network.dropAll(), 'upgrades refused'),
      () => ((network.refuseSse = true), 'SSE refused'),
      () => ((network.hangPolls = true), 'polls hang'),
    ];
    const active = new Set<string>();
    const heal = () => {
      network.set('none' as Fault);
      network.refuseUpgrades = false;
      network.refuseSse = false;
      network.hangPolls = false;
      active.clear();
    };

    const actions: ((tab: Tab) => Promise<string>)[] = [
      async (tab) => {
        const w = random.pick(dashboards[tab.dashboard].widgets);
        await widgetOf(tab.page, w.topic).getByRole('button', { name: `Refresh ${w.title}` }).click({ timeout: 5_000 });
        return `refresh ${w.title}`;
      },
      async (tab) => {
        const w = random.pick(dashboards[tab.dashboard].widgets);
        const mode = random.pick(MODES);
        await widgetOf(tab.page, w.topic).getByLabel(`Update mode of ${w.title}`).selectOption(mode, { timeout: 5_000 });
        return `${w.title} → ${mode}`;
      },
      async (tab) => {
        const toggle = tab.page.getByRole('switch', { name: 'Live updates' });
        if (tab.paused) await toggle.check({ timeout: 5_000 });
        else await toggle.uncheck({ timeout: 5_000 });
        tab.paused = !tab.paused;
        return tab.paused ? 'pause' : 'resume';
      },
      async (tab) => {
        const to = 1 - tab.dashboard;
        await tab.page.locator(`a.tab[href="/d/${dashboards[to].id}"]`).click({ timeout: 5_000 });
        tab.dashboard = to;
        return `switch to dashboard ${to}`;
      },
      async (tab) => {
        await tab.page.reload({ timeout: 20_000 }).catch(() => {}); // may hang on a dead network
        tab.paused = false;
        return 'reload';
      },
      async () => {
        if (tabs.length >= 3) return 'no new tab (three open)';
        await open(random.int(2)).catch(() => {});
        return 'open a tab';
      },
      async (tab) => {
        if (tabs.length <= 1) return 'no close (last tab)';
        tabs.splice(tabs.indexOf(tab), 1);
        await tab.page.close();
        return 'close a tab';
      },
    ];

    /// Heals everything, then checks every tab against the truth; returns how long healing took.
    const check = async () => {
      heal();
      const healed = Date.now();
      for (const tab of tabs) {
        const page = tab.page;
        // The page may have been reloaded on a dead network: make sure it shows the dashboard.
        if ((await page.locator('[role="status"][data-status]').count()) === 0) {
          await loadAgain(page, `${network.url}/d/${dashboards[tab.dashboard].id}`);
          tab.paused = false;
        }
        if ((await readPill(page)).status === 'offline') {
          // It gave up after ten failed attempts and says so; a user presses Retry.
          console.log('a tab was Offline: Retry');
          await page.getByRole('button', { name: /retry/i }).click();
        }
        if (tab.paused) {
          expect((await readPill(page)).status, 'a paused tab says so').toBe('paused');
          await page.getByRole('switch', { name: 'Live updates' }).check();
          tab.paused = false;
        }
        await expect
          .poll(async () => (await readPill(page)).status, {
            message: `seed ${seed}: the pill says it receives once the network is healed`,
            timeout: 200_000,
            intervals: [200],
          })
          .toMatch(/^(live|live-sse|polling)$/);
        const status = (await readPill(page)).status;
        for (const w of dashboards[tab.dashboard].widgets) {
          const truth = last[w.topic];
          const select = widgetOf(page, w.topic).getByLabel(`Update mode of ${w.title}`);
          // A dashboard whose load failed during the fault loads again by itself.
          await expect(select, `seed ${seed}: ${w.title} is on the page`).toBeVisible({ timeout: 30_000 });
          const mode = await select.inputValue();
          const interval = INTERVAL[mode] + (status === 'polling' ? 30 : 0);
          await expect
            .poll(async () => (await chartValues(page, w.topic)).at(-1) ?? 0, {
              message: `seed ${seed}: ${w.title} (${mode}, ${status}) shows point ${truth} of the server`,
              timeout: (interval + 20) * 1_000,
              intervals: [200],
            })
            .toBeGreaterThanOrEqual(truth);
          const values = await chartValues(page, w.topic);
          expect(values.every((v, i) => i === 0 || v > values[i - 1]), `seed ${seed}: ${w.title}: no point twice`).toBe(true);
        }
        const heap = await usedHeapMb(page);
        figures.heapMb = Math.max(figures.heapMb, heap);
        expect(heap, `seed ${seed}: JS heap`).toBeLessThan(HEAP_LIMIT_MB);
      }
      figures.checks += 1;
      return Date.now() - healed;
    };

    const deadline = Date.now() + minutes * 60_000;
    for (let step = 1; minutes > 0 ? Date.now() < deadline : step <= steps; step++) {
      figures.steps = step;
      const roll = random.next();
      let what: string;
      if (roll < 0.4) {
        const fault = random.pick(faults)();
        active.add(fault);
        figures.faults += 1;
        what = `fault: ${fault}`;
      } else if (roll < 0.93) {
        const tab = random.pick(tabs);
        what = await random.pick(actions)(tab).catch((e) => `action failed harmlessly (${String(e).split('\n')[0]})`);
        figures.actions += 1;
      } else {
        await server.stop();
        await server.start();
        figures.restarts += 1;
        active.add('server restart');
        what = 'server restart';
      }
      const hold = 1_000 + random.int(6_000);
      console.log(`step ${step}: ${what}; ${hold} ms`);
      await new Promise((r) => setTimeout(r, hold));
      if (step % PERIOD === 0) {
        const kinds = [...active].join(' + ') || 'actions only';
        const took = await check();
        healTimes[kinds] = Math.max(healTimes[kinds] ?? 0, took);
        figures.worstHealMs = Math.max(figures.worstHealMs, took);
        console.log(`check ${figures.checks}: healed from ${kinds} in ${took} ms`);
      }
    }
    if (figures.steps % PERIOD !== 0) await check();
    console.log(
      `chaos figures: seed ${seed}, ${figures.steps} steps, ${figures.faults} faults, ${figures.actions} user actions, ` +
        `${figures.restarts} server restarts, ${figures.checks} checks passed (0 invariant violations), ` +
        `worst time to heal ${figures.worstHealMs} ms, largest JS heap ${figures.heapMb.toFixed(1)} MB`,
    );
    for (const [kinds, ms] of Object.entries(healTimes)) console.log(`  heal after ${kinds}: ${ms} ms at worst`);
  } finally {
    publishing = false;
    await publisher;
    await context.close();
    await network.close();
    await server.stop();
  }
});
