import { expect, test, type Page } from '@playwright/test';

/// Every error the page logs (console errors, failed resource loads such as a 401, uncaught
/// exceptions), collected from the first byte.
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}

test('the sign-in page and the dashboard log no errors in the console', async ({ page }) => {
  const errors = collectErrors(page);

  // Signed out: the server sends the visitor to sign in before anything asks the API.
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await page.waitForLoadState('networkidle'); // hydrated, and its own session check answered
  expect(errors, 'sign-in page').toEqual([]);

  await page.getByLabel('E-mail').fill('ops@acme.test');
  await page.getByLabel('Password').fill('livedash-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
  for (const kind of ['line_chart', 'kpi_tiles', 'bar_chart', 'document_table', 'job_panel', 'active_users']) {
    await expect(page.locator(`[data-kind="${kind}"]`)).toHaveAttribute('data-offset', /^\d+$/);
  }
  await page.waitForLoadState('networkidle');
  expect(errors, 'dashboard').toEqual([]);

  // Logged out again: the way back to the sign-in page is just as clean.
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.waitForLoadState('networkidle');
  expect(errors, 'after logging out').toEqual([]);
});
