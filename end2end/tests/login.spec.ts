import { expect, test } from '@playwright/test';
import { signIn } from './support/session';

test('a signed-out visitor is sent to sign in, signs in, sees who they are, and logs out', async ({ page }) => {
  await page.goto('/');
  // The server sends a signed-out visitor to the sign-in form before rendering the dashboard.
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
  await expect(page).toHaveURL(/\/login$/);
});

test('a link to a dashboard survives signing in, and a signed-in visitor skips the form', async ({ page }) => {
  await signIn(page, 'ops@acme.test');
  const [{ id }] = await (await page.request.get('/api/dashboards')).json();
  await page.context().clearCookies();

  await page.goto(`/d/${id}`);
  await expect(page).toHaveURL(new RegExp(`/login\\?next=%2Fd%2F${id}$`));
  await page.getByLabel('E-mail').fill('ops@acme.test');
  await page.getByLabel('Password').fill('livedash-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(new RegExp(`/d/${id}$`));
  await expect(page.getByRole('status')).toHaveAttribute('data-status', 'live');

  await page.goto(`/login?next=%2Fd%2F${id}`);
  await expect(page).toHaveURL(new RegExp(`/d/${id}$`));
});
