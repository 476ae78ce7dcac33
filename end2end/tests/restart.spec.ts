import { expect, test } from '@playwright/test';
import { expectLiveAgain } from './support/pill';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

/// The chart's timestamps, in order, straight from ECharts.
async function chartTimes(page: import('@playwright/test').Page): Promise<number[]> {
  return page.evaluate(() => {
    const chart = (window as any).echarts.getInstanceByDom(document.querySelector('[data-topic="sales/orders"] .chart'));
    return (chart.getOption().series[0].data as [number, number][]).map(([ts]) => ts);
  });
}

test('after a server restart the pill reconnects, the loss is announced as a gap and the chart resyncs', async ({
  page,
}) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    await signIn(page, 'ops@acme.test', server.url);
    await page.goto(server.url);
    const pill = page.getByRole('status');
    const widget = page.locator('[data-topic="sales/orders"]');
    await expect(pill).toHaveAttribute('data-status', 'live');
    await expect(widget).toHaveAttribute('data-updates', /^([2-9]|\d{2,})$/);

    // Record every status the pill shows from now on.
    await page.evaluate(() => {
      const seen: string[] = ((window as any).__statuses = []);
      const pill = document.querySelector('[data-status]')!;
      new MutationObserver(() => seen.push(pill.getAttribute('data-status')!)).observe(pill, { attributes: true });
    });

    await server.stop(); // the in-memory history and epoch are gone with it
    await expect(pill).toHaveAttribute('data-status', 'reconnecting');
    await page.screenshot({ path: 'artifacts/reconnecting.png' });
    await server.start();
    await expectLiveAgain(page); // however far the backoff grew while the server was starting

    await expect(widget).toHaveAttribute('data-gaps', '1');
    await expect(widget).toHaveAttribute('data-updates', /\d+/);
    const before = Number(await widget.getAttribute('data-updates'));
    await expect.poll(async () => Number(await widget.getAttribute('data-updates'))).toBeGreaterThan(before + 1);

    const times = await chartTimes(page);
    const increasing = times.every((t, i) => i === 0 || t > times[i - 1]);
    expect(increasing, `no repeated or reordered point: ${times.join(',')}`).toBe(true);
    const statuses: string[] = await page.evaluate(() => (window as any).__statuses);
    expect(statuses).toContain('reconnecting');
    expect(statuses.at(-1)).toBe('live');
  } finally {
    await server.stop();
  }
});
