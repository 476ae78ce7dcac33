import { expect, test } from '@playwright/test';
import { signIn } from './support/session';

test('a job followed from the job panel shows its run live over its own stream and ends with its final status', async ({
  page,
}) => {
  await signIn(page);
  await page.goto('/');
  const panel = page.locator('section[data-topic="ops/jobs"]');
  // The demo feed starts a job every 15 s and logs a step a second until it ends.
  const running = panel.locator('li.job[data-status="running"]').first();
  await expect(running).toBeVisible({ timeout: 30_000 });
  const jobId = await running.getAttribute('data-job-id');
  const streamed = page.waitForResponse((r) => r.url().includes(`/api/v1/realtime/jobs/${jobId}`));
  await running.getByRole('button', { name: /^Follow / }).click();
  expect((await streamed).headers()['content-type']).toBe('text/event-stream');

  const detail = panel.locator(`.job-detail[data-job-id="${jobId}"]`);
  await expect(detail).toBeVisible();
  await expect(detail).toHaveAttribute('data-link', 'following');
  const lines = detail.locator('.job-log li');
  const first = await lines.count();
  // Steps arrive as they happen, then the stream ends with the job.
  await expect.poll(() => lines.count(), { timeout: 30_000 }).toBeGreaterThan(first);
  await expect(detail.locator('.job-detail-link')).toHaveText(/^Finished: (Succeeded|Failed)$/, { timeout: 30_000 });
  await expect(detail).toHaveAttribute('data-link', 'ended');
  const status = await detail.locator('.job-status').textContent();
  await expect(panel.locator(`li.job[data-job-id="${jobId}"] .job-status`)).toHaveText(status!);

  await detail.getByRole('button', { name: 'Close job details' }).click();
  await expect(detail).toHaveCount(0);
});
