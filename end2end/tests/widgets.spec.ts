import { expect, test } from '@playwright/test';
import { signIn } from './support/session';

test('live updates reach every kind of widget on the demo dashboard', async ({ page }) => {
  await signIn(page);
  await page.goto('/');
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
  const byKind = (kind: string) => page.locator(`section[data-kind="${kind}"]`);
  const updates = async (kind: string) => Number(await byKind(kind).getAttribute('data-updates'));

  // Line chart, KPI tiles, bar chart and table all apply live updates.
  for (const kind of ['line_chart', 'kpi_tiles', 'bar_chart', 'document_table']) {
    await expect(byKind(kind)).toHaveAttribute('data-offset', /^\d+$/);
    const before = await updates(kind);
    await expect.poll(() => updates(kind), { message: kind }).toBeGreaterThan(before);
  }
  // Table rows appear and disappear: the set of open orders moves on.
  const rows = byKind('document_table').locator('tbody tr');
  const firstIds = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-doc-id')));
  await expect.poll(async () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-doc-id')))).not.toEqual(firstIds);
  // A job runs with progress and a log; who is online includes me.
  await expect(byKind('job_panel').locator('.job').first()).toBeVisible({ timeout: 20_000 });
  await expect(byKind('job_panel').getByRole('progressbar').first()).toBeVisible();
  const people = byKind('active_users').locator('.person');
  await expect(people.filter({ hasText: 'ops@acme.test' })).toBeVisible();
  await expect(byKind('active_users').locator('.activity')).toContainText('ops@acme.test opened Operations');
});
