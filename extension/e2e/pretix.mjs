// A ticket bought in a real pretix storefront and paid with the purse card (issue 15):
// the shopper in headless Chromium or Firefox with the extension puts the ticket in the
// cart, gives an email address, picks "Purse card", places the order, and pays on the
// pretix-purse payment page (checkout.js -> the extension's confirmation window -> Pay)
// with the card emulator on vpcd. The order must then be paid in pretix, read through
// pretix's REST API; then `shop-plugin settle` and `purse-issuer clear` accept the batch.
//
// pretix, its PostgreSQL and the shop plugin come from integrations/pretix/e2e/live.sh,
// which runs `node e2e/pretix.mjs --browser B --live FILE` with FILE describing them
// (JSON: pretix, eventPath, item, organizer, event, token, pluginConfig, issuerKeys,
// clearingState: the clearing's state, which follows the SAM's batches across browsers).
// The card, the native host and the browser are lib/stack.mjs's and the drivers'.
// Screenshots: extension/test-results/pretix-<browser>-*.png.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { build, ROOT } from '../tools/build.mjs';
import { run, stopAll } from './lib/procs.mjs';
import { DRIVERS } from './lib/session.mjs';
import { binDir, bringUpCard, runDir, START_BALANCE } from './lib/stack.mjs';

const { values: opts } = parseArgs({ options: { browser: { type: 'string', default: 'chromium' }, live: { type: 'string' } } });
if (!opts.live) {
  console.error('usage: node e2e/pretix.mjs [--browser chromium|firefox] --live FILE (run by integrations/pretix/e2e/live.sh)');
  process.exit(2);
}
const BROWSER = opts.browser;
const driver = DRIVERS[BROWSER];
if (!driver) throw new Error(`unknown browser ${BROWSER}: one of ${Object.keys(DRIVERS).join(', ')}`);
const L = JSON.parse(readFileSync(opts.live, 'utf8'));
const ARTIFACTS = process.env.PURSE_E2E_ARTIFACTS ?? join(ROOT, 'test-results');
const WORK = join(process.env.PURSE_E2E_WORK ?? join(ROOT, '..', 'target', 'e2e'), `pretix-${BROWSER}`);
const say = (m) => console.log(`[pretix ${BROWSER}] ${m}`);
const EVENT = L.pretix + L.eventPath;
// A card of its own per browser: both pay at the same shop plugin.
const CARD_ID = BROWSER === 'firefox' ? '1000000000000002' : '1000000000000001';

/**
 * Waits until `fn(arg)` holds in `page`, across the navigations a form submission
 * causes. Each wait is in one page; a navigation ends it (Chromium) or leaves it
 * unanswered (Firefox's BiDi), so the waits are bounded and the next one asks the new
 * page, until the deadline.
 */
async function reach(page, what, fn, arg, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    const wait = page.waitForFunction(fn, arg, { timeout: 2000 }).then(() => true, (e) => { last = e; return false; });
    if (await Promise.race([wait, delay(2500).then(() => false)])) return;
  }
  throw new Error(`the shopper's page did not reach ${what} within ${timeoutMs} ms${last ? ` (${last.message})` : ''}`);
}

const atPath = (p) => location.pathname.includes(p) && document.readyState === 'complete';

/** pretix's button that goes on to the next checkout step. */
const NEXT_STEP = '.checkout-button-row button[type="submit"]';

/**
 * The order as pretix's REST API shows it once it is paid. pretix confirms the payment
 * and marks the order paid in two transactions (the webhook's and the return page's
 * confirmations race), and sends no event we could wait on: asked again until the
 * deadline.
 */
async function paidInPretix(code, timeoutMs = 30000) {
  const api = `${L.pretix}/api/v1/organizers/${L.organizer}/events/${L.event}/orders/${code}/`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(api, { headers: { Authorization: `Token ${L.token}` } });
    if (res.status !== 200) assert.fail(`pretix's API: ${res.status} ${await res.text()}`);
    const order = await res.json();
    if (order.status === 'p') return order;
    if (Date.now() > deadline) assert.fail(`order ${code} is ${order.status} in pretix, not paid (p), after ${timeoutMs} ms`);
    await delay(200);
  }
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `pretix-${BROWSER}-${name}.png`), fullPage: true });

async function main() {
  const t0 = performance.now();
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const n of readdirSync(ARTIFACTS)) if (n.startsWith(`pretix-${BROWSER}-`)) rmSync(join(ARTIFACTS, n));
  rmSync(WORK, { recursive: true, force: true });
  const dir = runDir(WORK);
  const S = await bringUpCard({ dir, issuerKeys: L.issuerKeys, cardId: CARD_ID, say });
  const extensionDir = build(BROWSER);
  const browser = await driver.start({ profile: S.profiles[BROWSER], extensionDir, home: S.home, log: () => {} });
  let page = null;
  try {
    page = await browser.newPage();
    say(`the shopper opens ${EVENT}`);
    await page.goto(EVENT);
    await reach(page, 'the ticket', (n) => document.querySelector(`[name="${n}"]`) !== null, `item_${L.item}`);
    await page.evaluate((n) => {
      const e = document.querySelector(`[name="${n}"]`);
      if (e.type === 'checkbox') e.checked = true;
      else e.value = '1';
    }, `item_${L.item}`);
    await page.click('#btn-add-to-cart');
    // The cart box's checkout button appears once the ticket is in the cart.
    await reach(page, 'the cart', () => document.readyState === 'complete' && document.querySelector('form.checkout-button-primary') !== null);
    await page.goto(`${EVENT}checkout/start`);
    await reach(page, 'a checkout step', () => /\/checkout\/(questions|payment)\//.test(location.pathname) && document.readyState === 'complete');
    if (await page.evaluate(() => location.pathname.includes('/checkout/questions/'))) {
      await page.evaluate(() => {
        for (const n of ['email', 'email_repeat']) {
          const e = document.querySelector(`[name="${n}"]`);
          if (e) e.value = 'buyer@example.org';
        }
      });
      await page.click(NEXT_STEP);
    }
    await reach(page, 'the payment step', atPath, '/checkout/payment/');
    const offered = await page.evaluate(() => [...document.querySelectorAll('input[name="payment"]')].map((e) => e.value));
    assert.ok(offered.includes('purse'), `the payment step offers ${offered.join(', ')}, not the purse card`);
    await page.evaluate(() => { document.querySelector('input[name="payment"][value="purse"]').click(); });
    await shot(page, '01-checkout-purse');
    say(`the payment step offers ${offered.join(', ')}; the shopper picks the purse card`);
    await page.click(NEXT_STEP);

    await reach(page, 'the confirmation step', atPath, '/checkout/confirm/');
    await page.click(NEXT_STEP);
    say('order placed; on to the purse payment page');
    await reach(page, "the plugin's payment page", () => window.PurseCheckout !== undefined && document.querySelector('#purse-pay-button') !== null && document.readyState === 'complete');
    const found = await page.evaluate(() => window.PurseCheckout.detect({ timeoutMs: 5000 }));
    assert.ok(found, 'checkout.js on the payment page did not find the extension');
    await shot(page, '02-pay-page');

    const opened = await browser.watchWindow('/ui/confirm.html', { timeout: 15000 });
    await page.click('#purse-pay-button');
    const w = await opened();
    await w.waitForSelector('body[data-state]:not([data-state="loading"])');
    await w.waitForSelector('[data-testid="pay"]:not([disabled])');
    await shot(w, '03-confirmation');
    const tPay = performance.now();
    await w.click('[data-testid="pay"]');
    say('confirmed in the extension; the card pays');

    await reach(page, 'the paid order', () => location.search.includes('paid=yes') && document.readyState === 'complete');
    const payMs = performance.now() - tPay;
    const code = await page.evaluate(() => location.pathname.match(/\/order\/([A-Z0-9]+)\//)?.[1]);
    assert.ok(code, 'the order page names no order code');

    const order = await paidInPretix(code);
    assert.equal(order.total, '12.50');
    const payments = order.payments.filter((p) => p.provider === 'purse');
    assert.equal(payments.length, 1, `purse payments of ${code}: ${JSON.stringify(order.payments)}`);
    assert.equal(payments[0].state, 'confirmed');
    assert.equal(payments[0].amount, '12.50');
    say(`pretix's API: order ${code} paid (${order.total} EUR, purse payment confirmed); ${payMs.toFixed(0)} ms from Pay to the return to the order`);
    await page.goto(`${L.pretix}${await page.evaluate(() => location.pathname)}`);
    await page.waitForSelector('.textbubble-success');
    assert.match(await page.textContent('.textbubble-success'), /Paid/);
    await shot(page, '04-paid-order');

    const b = (n) => join(binDir(), n);
    const outbox = join(dirname(L.pluginConfig), 'settlement-outbox');
    const batchFiles = () => (existsSync(outbox) ? readdirSync(outbox).filter((n) => n.endsWith('.json')) : []);
    const before = new Set(batchFiles());
    // One period closes per UTC day: a browser after the first closes another (--force).
    // The plugin's SAM is on the shop's own PC/SC service (live.sh: scripts/shop-pcscd).
    const settled = await run(b('shop-plugin'), ['--config', L.pluginConfig, 'settle', ...(before.size ? ['--force'] : [])], { env: L.pluginEnv });
    assert.equal(settled.code, 0, `shop-plugin settle: ${settled.stderr}`);
    // The day's batch: the new one in the outbox (a browser before this one settled its own).
    const batches = batchFiles().filter((n) => !before.has(n)).map((n) => join(outbox, n));
    assert.equal(batches.length, 1, `new batches in ${outbox}: ${batches.join(', ')}`);
    const batch = JSON.parse(readFileSync(batches[0], 'utf8'));
    assert.deepEqual(batch.transactions.map((t) => [t.card_id, t.total]), [[CARD_ID, 1250]]);
    const c = await run(b('purse-issuer'), ['clear', '--keys', L.issuerKeys, '--state', L.clearingState, batches[0]]);
    assert.equal(c.code, 0, `the clearing refused the batch: ${c.stdout}${c.stderr}`);
    say('shop-plugin settle: one transaction of 12.50 EUR; the clearing accepted the batch');

    const card = await S.host.card();
    assert.equal(card.balance, START_BALANCE - 1250, 'the card holds 100.00 - 12.50 EUR');
    say(`the card holds ${(card.balance / 100).toFixed(2)} EUR; done in ${((performance.now() - t0) / 1000).toFixed(1)} s (screenshots in ${ARTIFACTS})`);
  } catch (e) {
    // Where the shopper was when it failed, for the log and the artifacts.
    const where = await page?.evaluate(() => location.href).catch(() => '?');
    await page?.screenshot({ path: join(ARTIFACTS, `pretix-${BROWSER}-failed.png`), fullPage: true }).catch(() => {});
    e.message += ` (the shopper's page: ${where}; screenshot pretix-${BROWSER}-failed.png)`;
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await S.host.close().catch(() => {});
    await stopAll();
  }
}

main().catch((e) => {
  console.error(`[pretix ${BROWSER}] FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
