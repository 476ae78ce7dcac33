import type { Page } from '@playwright/test';

/// The page's JS heap in use after a full garbage collection, in MB (Chromium's DevTools protocol).
export async function usedHeapMb(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  await cdp.detach();
  return usedSize / 1e6;
}
