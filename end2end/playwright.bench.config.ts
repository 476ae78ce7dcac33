import base from './playwright.config';
import { defineConfig } from '@playwright/test';

// Benchmarks print figures and take minutes: `scripts/bench` runs them, `scripts/test` does not.
export default defineConfig({ ...base, testDir: './bench', timeout: 300_000, webServer: undefined });
