import { expect, test } from '@playwright/test';
import { signIn } from './support/session';

test('KPI tiles show every key, update live, and flash what changed', async ({ page }) => {
  await signIn(page);
  await page.goto('/');
  const widget = page.locator('[data-kind="kpi_tiles"]');
  await expect(widget.getByRole('heading', { name: 'Today' })).toBeVisible();
  for (const label of ['Orders today', 'Revenue today', 'Active sessions', 'Conversion rate']) {
    await expect(widget.locator('.kpi-label', { hasText: label })).toBeVisible();
  }
  const orders = widget.locator('[data-key="orders_today"] .kpi-value');
  await expect(orders).toHaveText(/^[\d,]+$/);
  const first = await orders.textContent();
  await expect(orders).not.toHaveText(first!); // the demo shop sells every second
  await expect(widget.locator('.kpi-flash').first()).toBeVisible();
  await page.screenshot({ path: 'artifacts/kpis.png' });
});
