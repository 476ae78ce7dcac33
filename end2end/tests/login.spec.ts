import { expect, test } from '@playwright/test';

test('a signed-out visitor is sent to sign in, signs in, sees who they are, and logs out', async ({ page }) => {
  await page.goto('/');
  // The socket closes with 4401 and the page sends the visitor to the sign-in form.
  await expect(page).toHaveURL(/\/login$/);
  await page.screenshot({ path: 'artifacts/login.png' });

  await page.getByLabel('E-mail').fill('viewer@acme.test');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong e-mail or password.');

  await page.getByLabel('Password').fill('livedash-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');
  await expect(page.locator('.user-email')).toHaveText('viewer@acme.test');
  await expect(page.locator('.user-tenant')).toHaveText('acme · viewer');

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/, { timeout: 10_000 });
});
