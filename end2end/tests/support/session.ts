import { expect, type Page } from '@playwright/test';

/// Signs in through the API at `origin` (the suite's server by default); the browser context keeps
/// the session cookie.
export async function signIn(page: Page, email = 'ops@acme.test', origin = '') {
  const response = await page.request.post(`${origin}/api/auth/login`, { data: { email, password: 'livedash-demo' } });
  expect(response.status()).toBe(200);
}
