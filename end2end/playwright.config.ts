import { defineConfig, devices } from '@playwright/test';
import os from 'node:os';
import path from 'node:path';

// scripts/test builds the server and sets these; the suite starts the server itself.
const port = Number(process.env.LIVEDASH_E2E_PORT ?? 3100);
const bin = process.env.LIVEDASH_BIN ?? '../target/debug/livedash';
const siteRoot = process.env.LEPTOS_SITE_ROOT ?? '../target/site';

const browser = {
  ...devices['Desktop Chrome'],
  // Debian's Chromium: Playwright never downloads a browser here.
  launchOptions: {
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  },
};

/// The specs whose printed figures would measure the machine's other work if they ran beside it.
const FIGURES = ['**/latency.spec.ts', '**/render_load.spec.ts'];

export default defineConfig({
  testDir: './tests',
  // A guard against a test that hangs, not a promise of the product's: each step waits for what
  // the product promises (an expect gives it 15 s). A test of many steps in several tabs needs
  // more than a minute when the machine is busy: CI builds Trunk's static front end from cold
  // beside two workers, and there a three-tab notifications test took 73 s, every step passing.
  timeout: 180_000,
  expect: { timeout: 15_000 },
  // Two files at a time: most tests wait on the network, the server and the page's own timers, and
  // each file's tests run in order in one worker. Tests of the shared server change nothing another
  // test reads (they sign in and watch); every test that changes a tenant's dashboards, displays,
  // rules or modes, or restarts a server, has a server of its own (OwnServer).
  fullyParallel: false,
  workers: 2,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    { name: 'chromium', testIgnore: FIGURES, use: browser },
    // The tests that print latency and render figures run last, alone on the machine, so that their
    // figures are the page's and not a neighbour test's (`--no-deps` runs them without the rest).
    { name: 'figures', testMatch: FIGURES, dependencies: ['chromium'], workers: 1, use: browser },
  ],
  webServer: {
    command: bin,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      LEPTOS_SITE_ROOT: siteRoot,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      // A database of its own, so a run never touches (or depends on) a developer's livedash.db.
      LIVEDASH_DATABASE: path.join(os.tmpdir(), `livedash-e2e-${process.pid}.db`),
      // The demo tenants, users and feed the tests sign in with and watch.
      LIVEDASH_DEMO: 'on',
      // Every test signs in from 127.0.0.1: the per-address sign-in throttle is for attackers.
      LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS: '100000',
      // Metrics on a loopback port of their own, free whatever else runs beside.
      LIVEDASH_METRICS_ADDR: '127.0.0.1:0',
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    },
  },
});
