import { expect, test, type Page } from '@playwright/test';

/// Signs in through the API at `origin` (the suite's server by default); the browser context keeps
/// the session cookie.
export async function signIn(page: Page, email = 'ops@acme.test', origin = '') {
  const response = await page.request.post(`${origin}/api/auth/login`, {
    data: { email, password: 'livedash-demo' },
    headers: from(origin),
  });
  expect(response.status()).toBe(200);
}

/// The headers a client that is not a browser sends with a state change to `origin` (the suite's
/// server by default): where it is from. The server refuses a change that does not say.
export function from(origin = ''): Record<string, string> {
  return { Origin: origin || (test.info().project.use.baseURL as string) };
}
