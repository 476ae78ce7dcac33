import { expect, test } from '@playwright/test';

test('the API documentation page lists every operation, with nothing loaded from elsewhere', async ({ page, baseURL }) => {
  const ours = new URL(baseURL!).host;
  const elsewhere: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol.startsWith('http') && url.host !== ours) elsewhere.push(request.url());
  });
  const document = await (await page.request.get('/api/openapi.json')).json();
  const operations = Object.values(document.paths).flatMap((item: any) => Object.keys(item)).length;

  await page.goto('/api/docs');
  await expect(page.getByRole('heading', { name: /livedash HTTP API/ })).toBeVisible();
  await expect(page.locator('.opblock')).toHaveCount(operations);
  const publish = page.locator('.opblock-post').filter({ hasText: '/api/v1/publish/{topic}' });
  await publish.locator('.opblock-summary').click();
  await expect(publish.locator('.parameter__name', { hasText: 'Idempotency-Key' })).toBeVisible();
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: 'artifacts/api-docs.png', fullPage: false });
  expect(elsewhere, 'requests to other hosts').toEqual([]);
});
