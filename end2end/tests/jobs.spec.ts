import { expect, test } from '@playwright/test';
import { createDashboard } from './support/dashboard';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test('a job followed from the job panel shows its run live over its own stream and ends with its final status', async ({
  page,
}) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    const topic = 'test/jobs';
    const step = (status: string, progress: number, level: string, body: string) =>
      server.publish('acme', topic, {
        events: [{ type: 'job', level, title: 'Nightly export', body, data: { jobId: 'e2e-1', status, progress } }],
      });
    await signIn(page, 'ops@acme.test', server.url);
    const id = await createDashboard(page, server.url, 'Jobs', [{ title: 'Jobs', kind: 'job_panel', topic }]);
    expect(await step('running', 0, 'info', 'Started')).toBe(200);
    await page.goto(`${server.url}/d/${id}`);
    const panel = page.locator(`section[data-topic="${topic}"]`);
    const row = panel.locator('li.job[data-job-id="e2e-1"]');
    await expect(row).toHaveAttribute('data-status', 'running');

    const streamed = page.waitForResponse((r) => r.url().includes('/api/v1/realtime/jobs/e2e-1'));
    await row.getByRole('button', { name: 'Follow Nightly export live' }).click();
    expect((await streamed).headers()['content-type']).toBe('text/event-stream');
    const detail = panel.locator('.job-detail[data-job-id="e2e-1"]');
    await expect(detail).toHaveAttribute('data-link', 'following');
    await expect(detail.locator('.job-log li')).toHaveCount(1);

    // Each step shows as it happens; the last one ends the stream with the job's final status.
    expect(await step('running', 50, 'info', 'Exporting')).toBe(200);
    await expect(detail.locator('.job-log li')).toHaveCount(2);
    await expect(detail.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '50');
    expect(await step('failed', 70, 'error', 'Upstream 503')).toBe(200);
    await expect(detail.locator('.job-detail-link')).toHaveText('Finished: Failed');
    await expect(detail).toHaveAttribute('data-link', 'ended');
    await expect(detail.locator('.job-errors')).toHaveText('Upstream 503');
    await expect(row.locator('.job-status')).toHaveText('Failed');

    await detail.getByRole('button', { name: 'Close job details' }).click();
    await expect(detail).toHaveCount(0);
  } finally {
    await server.stop();
  }
});
