import { defineConfig, devices } from '@playwright/test';
import os from 'node:os';
import path from 'node:path';

// scripts/test builds the server and sets these; the suite starts the server itself.
const port = Number(process.env.LIVEDASH_E2E_PORT ?? 3100);
const bin = process.env.LIVEDASH_BIN ?? '../target/debug/livedash';
const siteRoot = process.env.LEPTOS_SITE_ROOT ?? '../target/site';

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
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
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        // Debian's Chromium: Playwright never downloads a browser here.
        launchOptions: {
          executablePath: '/usr/bin/chromium',
          args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
        },
      },
    },
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
