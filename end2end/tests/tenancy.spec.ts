import { expect, test } from '@playwright/test';
import { OwnServer } from './support/server';
import { signIn } from './support/session';

test("a user of globex never sees acme's data", async ({ browser }) => {
  const server = await OwnServer.create();
  await server.start();
  try {
    // Acme publishes a KPI nobody else has, on the topic both tenants' dashboards show.
    expect(await server.publish('acme', 'kpi/overview', { values: { acme_secret: 4242 } })).toBe(200);

    const acme = await browser.newPage();
    await signIn(acme, 'ops@acme.test', server.url);
    await acme.goto(server.url);
    await expect(acme.locator('[data-key="acme_secret"] .kpi-value')).toHaveText('4,242');

    const globex = await browser.newPage();
    await signIn(globex, 'ops@globex.test', server.url);
    await globex.goto(server.url);
    await expect(globex.locator('.user-tenant')).toHaveText('globex · admin');
    await expect(globex.locator('[data-key="orders_today"]')).toBeVisible();
    await expect(globex.locator('[data-key="acme_secret"]')).toHaveCount(0);
    await expect(globex.getByText('4,242')).toHaveCount(0);
    // Their numbers are their own shop's: acme's orders today never show up on globex's tile.
    const acmeOrders = await acme.locator('[data-key="orders_today"] .kpi-value').textContent();
    const globexOrders = await globex.locator('[data-key="orders_today"] .kpi-value').textContent();
    expect(globexOrders).not.toBe(acmeOrders);

    // The same tab, another user: what the tab saved for acme's admin must never show, not even
    // for a moment before the first snapshot.
    await acme.addInitScript(() => {
      (window as any).__leaked = false;
      new MutationObserver(() => {
        if (document.querySelector('[data-key="acme_secret"]')) (window as any).__leaked = true;
      }).observe(document, { subtree: true, childList: true });
    });
    await signIn(acme, 'ops@globex.test', server.url);
    await acme.reload();
    await expect(acme.locator('.user-tenant')).toHaveText('globex · admin');
    await expect(acme.locator('[data-key="orders_today"]')).toBeVisible();
    // A restored view shows before the first snapshot: once globex's own snapshot is applied, any
    // leak would have been seen.
    await expect(acme.locator('[data-topic="kpi/overview"]')).toHaveAttribute('data-offset', /^\d+$/);
    expect(await acme.evaluate(() => (window as any).__leaked), "acme's saved view appeared for globex").toBe(false);
  } finally {
    await server.stop();
  }
});
