// The end-to-end test of a purse payment in a real browser: Debian's Chromium (driven
// by playwright-core) or Firefox ESR (puppeteer-core over WebDriver BiDi) with the
// extension, the demo shop's page and checkout.js, the shop plugin, the native host on
// the real PC/SC stack (pcscd + vpcd) and the card emulator. `node e2e/run.mjs
// [--browser chromium|firefox]` (pcscd must run: scripts/test-all and scripts/demo start
// it). Prints each step, and the time from the Pay click to the shop's paid status.
// Screenshots go to extension/test-results/<browser>-*.png (PURSE_E2E_ARTIFACTS
// overrides the directory). The hostile shop runs in Chromium only so far.
//
// Scenarios, in order, on one card: no native host; a native host of a newer protocol;
// a single purchase (then settle and clearing at the end); cancel; insufficient funds;
// no card, then the card inserted; the card pulled mid-payment, then recovered; a
// time-cycle stopped after a few ticks; a lost connection (the answer kept and
// delivered after a browser restart); the page trying to change the amount after
// confirmation; the popup's history; settle and clearing; then the hostile shop on a
// fresh card (hostile.mjs): Pay's activation delay, rushed TICKs, proxy statuses on the
// DEBIT answer, the extension reloaded and the browser killed before the answer was
// stored, a recovery asking for other records.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../tools/build.mjs';
import { chromiumId, firefoxId } from '../tools/extension-id.mjs';
import { control } from './lib/emulator.mjs';
import { hostileShop } from './hostile.mjs';
import { stopAll } from './lib/procs.mjs';
import { openSession } from './lib/session.mjs';
import { bringUp, CARD_ID, missingBinaries, binDir, START_BALANCE } from './lib/stack.mjs';

const { browser: BROWSER } = parseArgs({ options: { browser: { type: 'string', default: 'chromium' } }, strict: false }).values;
const ARTIFACTS = process.env.PURSE_E2E_ARTIFACTS ?? join(ROOT, 'test-results');
const WORK = join(process.env.PURSE_E2E_WORK ?? join(ROOT, '..', 'target', 'e2e'), BROWSER);
const say = (m) => console.log(`[e2e] ${m}`);
const missing = missingBinaries();
if (missing.length) {
  console.error(`[e2e] missing binaries in ${binDir()}: ${missing.join(', ')} (cargo build --workspace)`);
  process.exit(1);
}

let S; // the stack
let B; // the browser session
let balance = START_BALANCE; // what the card must hold, by our own count
const paid = []; // the amounts the batch must contain

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // This browser's screenshots only: the other browser's run keeps its own.
  for (const n of readdirSync(ARTIFACTS)) if (n.startsWith(`${BROWSER}-`)) rmSync(join(ARTIFACTS, n));
  rmSync(WORK, { recursive: true, force: true });
  S = await bringUp({ base: WORK, say });
  B = await openSession(S, { artifacts: ARTIFACTS, browser: BROWSER });
  say(`${BROWSER} started with the extension ${BROWSER === 'firefox' ? firefoxId() : chromiumId()} (${B.extensionDir})`);
  assert.ok(B.found, 'checkout.js did not find the extension');
  say(`the shop page found the extension ${B.found.extension.version} (protocol ${B.found.versions})`);
});

after(async () => {
  await B?.close().catch(() => {});
  await S?.host.close().catch(() => {});
  await S?.proxy.close().catch(() => {});
  await stopAll();
  say(`logs in ${S?.dir}; screenshots in ${ARTIFACTS}`);
});

const buy = (p) => B.buy(p);
const pressPay = (w) => B.pressPay(w);
const orderId = () => B.orderId();
const shopOrder = (id) => B.shopOrder(id);
const webhookCauses = (id) => B.webhookCauses(id);
const cardBalance = () => B.cardBalance();
const text = (w, id) => B.text(w, id);
const pendingRecords = () => B.pendingRecords();
const shot = (w, n) => B.shot(w, n);

/**
 * The proxy drops the connection of every card answer's delivery until S.proxy.clear(),
 * as a network would; returns the list of what those deliveries carried.
 */
function cutAnswers() {
  const dropped = [];
  S.proxy.use(async (c) => {
    const m = c.method === 'POST' && c.path.match(/^\/v1\/checkout\/payments\/([^/]+)\/answer$/);
    if (!m) return null;
    dropped.push({ paymentId: decodeURIComponent(m[1]), clientSecret: c.json().client_secret });
    return { reset: true };
  });
  return dropped;
}

// ------------------------------------------------------------------ scenarios

test('no native host: the shopper is told to install it', async () => {
  const manifest = S.hostManifests[BROWSER];
  renameSync(manifest, `${manifest}.off`);
  try {
    const w = await buy('tea');
    await w.waitForSelector('body[data-state="failed"]');
    assert.match(await text(w, 'error-text'), /native host\) is not installed/);
    assert.match(await text(w, 'error-action'), /native-host install --chrome-id/);
    await B.shop.waitForSelector('#checkout-stage[data-error="host_not_installed"]');
    await shot(w, '00-no-native-host');
    say('without the native host the confirmation says how to install it; the page got host_not_installed');
    await w.close();
  } finally {
    renameSync(`${manifest}.off`, manifest);
  }
});

test('a native host of a newer protocol: the shopper is told to update the extension', async () => {
  const manifest = S.hostManifests[BROWSER];
  const real = readFileSync(manifest, 'utf8');
  writeFileSync(manifest, JSON.stringify({ ...JSON.parse(real), path: join(ROOT, 'e2e', 'lib', 'newer-host.mjs') }));
  try {
    const w = await buy('tea');
    await w.waitForSelector('body[data-state="failed"]');
    assert.match(await text(w, 'error-text'), /too old for the purse native host/);
    assert.match(await text(w, 'error-action'), /Update the extension/);
    await B.shop.waitForSelector('#checkout-stage[data-error="extension_outdated"]');
    say('a native host of a newer protocol: the confirmation says to update the extension');
    await w.close();
  } finally {
    writeFileSync(manifest, real);
  }
});

test('single purchase: confirmation, Pay, the shop shows paid, the webhook arrived, the card fell by exactly the amount', async () => {
  const w = await buy('tea');
  await w.waitForSelector('body[data-state="confirming"]');
  assert.equal(await text(w, 'shop-origin'), S.shopOrigin, 'the origin as the browser reports it');
  assert.equal(await text(w, 'service-origin'), S.pluginUrl, 'and the payment service, which is elsewhere');
  assert.equal(await text(w, 'description'), 'Green tea, 100 g');
  assert.equal(await text(w, 'amount'), '12.50 EUR');
  assert.equal(await text(w, 'balance'), '100.00 EUR');
  await shot(w, '01-confirmation');
  say('confirmation shows 12.50 EUR for "Green tea, 100 g" to ' + S.shopOrigin + ', card 100.00 EUR; pressing Pay');
  const t0 = await pressPay(w);
  await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 15000 });
  const ms = performance.now() - t0;
  await w.waitForSelector('body[data-state="succeeded"]');
  const extMs = Number(await w.getAttribute('body', 'data-pay-ms'));
  say(`Pay -> shop shows paid: ${ms.toFixed(1)} ms (extension: Pay -> plugin succeeded ${extMs} ms; goal < 300 ms)`);
  console.log(`PAY_TO_PAID_MS=${ms.toFixed(1)}`);
  assert.equal(await text(w, 'charged'), '12.50 EUR');
  assert.equal(await text(w, 'new-balance'), '87.50 EUR');
  assert.equal(await text(w, 'balance'), '87.50 EUR', 'the card line shows the balance after the debit');
  await shot(w, '02-result');
  const id = await orderId();
  const order = await shopOrder(id);
  assert.equal(order.status, 'paid');
  assert.equal(order.charged_total, 1250);
  assert.ok((await webhookCauses(id)).includes('payment.succeeded'), 'the signed webhook reached the shop');
  balance -= 1250;
  paid.push(1250);
  assert.equal(await cardBalance(), balance, 'the card fell by exactly 12.50');
  assert.deepEqual(await pendingRecords(), [], 'nothing left to deliver');
  await w.close();
});

test('cancel: nothing charged, the page hears shopper_canceled', async () => {
  const w = await buy('tea');
  await w.waitForSelector('body[data-state="confirming"]');
  await w.click('[data-testid="cancel"]');
  await B.shop.waitForSelector('#checkout-stage[data-error="shopper_canceled"]');
  await w.waitForSelector('body[data-state="canceled"]');
  await B.shop.waitForSelector('#order-status[data-status="canceled"]');
  assert.equal(await cardBalance(), balance);
  say('cancelled: the page got shopper_canceled, the order is canceled, the card unchanged');
  await w.close();
});

test('insufficient funds: no Pay, a sentence saying what to do, nothing charged', async () => {
  const w = await buy('teapot'); // 150.00 EUR > 87.50 EUR
  await w.waitForSelector('body[data-state="confirming"]');
  assert.equal(await text(w, 'amount'), '150.00 EUR');
  assert.ok(await w.isDisabled('[data-testid="pay"]'));
  assert.match(await text(w, 'notice'), /holds 87\.50 EUR; this payment needs 150\.00 EUR\. Load your card or insert another purse card\./);
  await shot(w, '03-insufficient-funds');
  await w.click('[data-testid="cancel"]');
  await B.shop.waitForSelector('#checkout-stage[data-error="insufficient_funds"]');
  assert.equal(await cardBalance(), balance);
  say('insufficient funds: Pay disabled, the page got insufficient_funds, the card unchanged');
  await w.close();
});

test('no card, then the card inserted: the confirmation waits for it, then pays', async () => {
  await control(S.control, 'remove');
  await S.host.waitCard(false);
  const w = await buy('tea');
  await w.waitForSelector('body[data-state="waiting_for_card"]');
  assert.equal(await text(w, 'headline'), 'Insert your purse card into the reader.');
  await B.shop.waitForSelector('#checkout-stage[data-stage="waiting_for_card"]');
  assert.ok(await w.isDisabled('[data-testid="pay"]'));
  await shot(w, '04-waiting-for-card');
  say('no card: the confirmation asks for it; inserting the card');
  await control(S.control, 'insert');
  await w.waitForSelector('body[data-state="confirming"]');
  assert.equal(await text(w, 'balance'), '87.50 EUR');
  await pressPay(w);
  await B.shop.waitForSelector('#order-status[data-status="paid"]');
  balance -= 1250;
  paid.push(1250);
  assert.equal(await cardBalance(), balance);
  say('card inserted, paid 12.50 EUR');
  await w.close();
});

test('card pulled mid-payment (after the DEBIT): recovery when it is back, charged exactly once', async () => {
  const w = await buy('tea');
  await w.waitForSelector('body[data-state="confirming"]');
  await control(S.control, 'pull-after 54'); // the card debits, then leaves without answering
  await pressPay(w);
  await w.waitForSelector('body[data-state="recovering"]');
  await B.shop.waitForSelector('#checkout-stage[data-stage="recovering"]');
  assert.match(await text(w, 'error-text'), /removed before the payment finished/);
  assert.match(await text(w, 'error-action'), /Put the card back/);
  assert.deepEqual(await pendingRecords(), [(await shopOrder(await orderId())).payment_id], 'the recovery is kept in storage');
  await shot(w, '05-card-pulled');
  say('card pulled after its DEBIT: the extension keeps the payment for recovery; putting the card back');
  await control(S.control, 'insert');
  await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 20000 });
  await w.waitForSelector('body[data-state="succeeded"]');
  balance -= 1250;
  paid.push(1250);
  assert.equal(await cardBalance(), balance, 'debited once, by exactly 12.50');
  assert.deepEqual(await pendingRecords(), []);
  say('recovered: the card had paid; the shop shows paid');
  await w.close();
});

test('time-cycle: price per period, period and cap; running total; stopped after a few ticks', async () => {
  const w = await buy('parking');
  await w.waitForSelector('body[data-state="confirming"]');
  assert.equal(await text(w, 'amount'), '0.50 EUR per 1 second');
  assert.equal(await text(w, 'unit-amount'), '0.50 EUR');
  assert.equal(await text(w, 'period'), '1 second');
  assert.equal(await text(w, 'cap'), 'at most 10 × 0.50 EUR = 5.00 EUR');
  await shot(w, '06-time-cycle-confirmation');
  await pressPay(w);
  await w.waitForSelector('body[data-state="running"]');
  await w.waitForFunction(() => /^[3-9] of 10 periods charged/.test(document.querySelector('[data-testid="running"]').textContent));
  await shot(w, '07-time-cycle-running');
  await w.click('[data-testid="stop"]');
  await B.shop.waitForSelector('#order-status[data-status="paid"]');
  await w.waitForSelector('body[data-state="succeeded"]');
  const order = await shopOrder(await orderId());
  assert.ok(order.charged_units >= 3 && order.charged_units < 10, `units ${order.charged_units}`);
  assert.equal(order.charged_total, order.charged_units * 50);
  balance -= order.charged_total;
  paid.push(order.charged_total);
  assert.equal(await cardBalance(), balance, 'the card fell by exactly the units charged');
  await shot(w, '08-time-cycle-result');
  say(`time-cycle stopped after ${order.charged_units} periods: ${order.charged_total} cents`);
  await w.close();
});

test('a lost connection loses no money: the kept answer is delivered when the page retries', async () => {
  const dropped = cutAnswers(); // what the dropped deliveries carried
  const w = await buy('tea');
  await pressPay(w);
  await B.shop.waitForSelector('#checkout-stage[data-error="delivery_pending"]', { timeout: 30000 });
  const id = await orderId();
  assert.equal((await shopOrder(id)).status, 'processing');
  const { paymentId, clientSecret } = dropped.at(-1);
  assert.equal(paymentId, (await shopOrder(id)).payment_id);
  assert.deepEqual(await pendingRecords(), [paymentId]);
  balance -= 1250;
  assert.equal(await cardBalance(), balance, 'the card has paid');
  S.proxy.clear();
  await w.close();
  const apiBase = S.pluginUrl;
  // The page asks again for the same payment: the extension delivers the kept answer first.
  const again = await B.shop.evaluate((o) => window.PurseCheckout.pay(o).then((p) => p.status, (e) => `error ${e.code}`), { paymentId, clientSecret, apiBase });
  assert.equal(again, 'succeeded');
  const done = await B.orderReaches(id, 'paid');
  assert.equal(done.charged_total, 1250);
  paid.push(1250);
  assert.deepEqual(await pendingRecords(), []);
  assert.equal(await cardBalance(), balance, 'charged once');
  say('the page retried the same payment: the kept answer went out first, the shop shows paid');
});

test('a lost connection loses no money: the card answer is kept and delivered again at the next start', async () => {
  cutAnswers(); // the network drops the delivery
  const w = await buy('tea');
  await pressPay(w);
  await B.shop.waitForSelector('#checkout-stage[data-error="delivery_pending"]', { timeout: 30000 });
  const id = await orderId();
  const order = await shopOrder(id);
  assert.equal(order.status, 'processing', 'the shop has no answer yet');
  balance -= 1250;
  assert.equal(await cardBalance(), balance, 'the card has paid');
  assert.deepEqual(await pendingRecords(), [order.payment_id], 'the answer is kept in extension storage');
  say('the card paid but the shop could not be reached: the page was told delivery_pending, the answer is kept');
  // The shopper closes the browser; the network comes back; at the next start the
  // extension delivers what it kept.
  S.proxy.clear();
  await B.restart();
  say('browser restarted');
  const done = await B.orderReaches(id, 'paid');
  assert.equal(done.charged_total, 1250);
  paid.push(1250);
  assert.deepEqual(await pendingRecords(), [], 'delivered and forgotten');
  assert.equal(await cardBalance(), balance, 'charged once');
  assert.ok((await webhookCauses(id)).includes('payment.succeeded'));
  say('after the extension restarted it delivered the kept answer: the shop shows paid');
});

test('the page trying to change the amount after confirmation is refused', async () => {
  const w = await buy('tea');
  await w.waitForSelector('body[data-state="confirming"]');
  // The page makes a second, dearer payment and asks the extension to pay that instead,
  // and re-sends the first request with an amount of its own.
  const replies = await B.shop.evaluate(async () => {
    const r = await fetch('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ product: 'teapot' }) });
    const dear = await r.json();
    const got = [];
    const done = new Promise((resolve) => {
      window.addEventListener('message', (ev) => {
        const m = ev.data;
        if (m && m.ns === 'purse-checkout' && m.from === 'extension' && m.id.startsWith('evil') && m.type === 'failure') {
          got.push({ id: m.id, code: m.error.code });
          if (got.length === 2) resolve();
        }
      });
    });
    window.postMessage({ ns: 'purse-checkout', v: 1, from: 'page', type: 'request', id: 'evil1', payment: { id: dear.payment_id, client_secret: dear.client_secret, api_base: dear.api_base } }, location.origin);
    window.postMessage({ ns: 'purse-checkout', v: 1, from: 'page', type: 'request', id: 'evil2', amount: 1, payment: { id: dear.payment_id, client_secret: dear.client_secret, api_base: dear.api_base, amount: 1 } }, location.origin);
    await done;
    return got;
  });
  assert.deepEqual(replies.map((r) => r.code), ['busy', 'busy']);
  assert.equal(await text(w, 'amount'), '12.50 EUR', 'the confirmation still shows what the shopper saw');
  await pressPay(w);
  await B.shop.waitForSelector('#order-status[data-status="paid"]');
  balance -= 1250;
  paid.push(1250);
  assert.equal(await cardBalance(), balance, 'exactly the confirmed 12.50 was charged');
  say('the page asked to pay another (dearer) payment during the confirmation: refused (busy); 12.50 charged');
  await w.close();
});

test("the popup shows the card's recent transactions", async () => {
  const p = await B.browser.openExtensionPage('ui/popup.html');
  await p.waitForSelector('[data-testid="history"] tbody tr');
  const rows = await p.$$eval('[data-testid="history"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(rows.length, paid.length);
  assert.equal(rows[0][3], `${(balance / 100).toFixed(2)} EUR`, 'newest first, with the balance after it');
  assert.match(await p.textContent('[data-testid="card"]'), new RegExp(`^${CARD_ID}: ${(balance / 100).toFixed(2)} EUR$`));
  await shot(p, '09-popup-history');
  say(`popup: ${rows.length} transactions, balance ${(balance / 100).toFixed(2)} EUR`);
  await p.close();
});

test('settle: the batch holds every payment, and the clearing office accepts it', async () => {
  const r = await S.run('shop-plugin', ['--config', S.config, 'settle']);
  assert.equal(r.code, 0, r.stderr);
  const [batchFile] = S.batches();
  assert.ok(batchFile, `no batch in ${S.outbox}`);
  const batch = JSON.parse(readFileSync(batchFile, 'utf8'));
  const totals = batch.transactions.map((t) => t.total);
  assert.deepEqual([...totals].sort((a, b) => a - b), [...paid].sort((a, b) => a - b));
  assert.ok(batch.transactions.every((t) => t.card_id === CARD_ID));
  const c = await S.run('purse-issuer', ['clear', '--keys', S.issuerKeys, '--state', S.clearingState, batchFile]);
  assert.equal(c.code, 0, `clear refused the batch: ${c.stdout}${c.stderr}`);
  say(`settled ${totals.length} transactions (${paid.reduce((a, b) => a + b, 0)} cents); the clearing office accepted the batch`);
});

// The hostile scenarios drive Chromium's service worker over CDP: Chromium only so far.
if (BROWSER === 'chromium') hostileShop(test, () => ({ S, B, say }));
