// The hostile shop (issue 10), end to end in Chromium on the real parts, on a fresh card
// after the day's batch: the Pay button's activation delay against a provoked click;
// a shop rushing time-cycle TICKs (it shows a longer period than its SAM uses, so its
// real SAM hands out valid TICKs at once); every proxy status between the shop and the
// extension on the DEBIT answer's delivery; the extension's service worker stopped and
// the browser killed between the card's answer and its storage (the native host's held copy
// delivers it); a recovery in which the shop asks for the card's other records.
// The shop's side is the proxy in front of the real plugin (lib/hostile-proxy.mjs).

import assert from 'node:assert/strict';
import { control } from './lib/emulator.mjs';
import { htmlPage, rewriteJson } from './lib/hostile-proxy.mjs';
import { proofCommand } from '../src/lib/apdu.js';

export const HOSTILE_CARD = '1000000000000002';
const HOSTILE_BALANCE = 50000;
const TEA = 1250;

/** Registers the scenarios; `env()` gives {S, B, say} once the stack is up. */
export function hostileShop(test, env) {
  let balance = HOSTILE_BALANCE;
  const ctx = () => env();

  /** Buys a tea, presses Pay once it is live, and waits for the shop's paid. */
  async function payTea(what) {
    const { B } = ctx();
    const w = await B.buy('tea');
    try {
      await B.pressPay(w);
      await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 20000 });
    } catch (e) {
      await B.shot(w, `hostile-${what.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
      throw e;
    }
    balance -= TEA;
    assert.equal(await B.cardBalance(), balance, `${what}: debited exactly once`);
    assert.deepEqual(await B.pendingRecords(), [], `${what}: nothing left to deliver`);
    await w.close();
  }

  /** The ids of the answers the native host holds (acknowledged ones are gone). */
  async function heldIds() {
    return (await ctx().S.host.call({ type: 'held' })).responses.map((h) => h.held_id);
  }

  /** The one answer the host took since `before` (a list of held ids). */
  async function newlyHeld(before) {
    const fresh = (await heldIds()).filter((h) => !before.includes(h));
    assert.equal(fresh.length, 1, `the host holds the card's answer: ${fresh}`);
    return fresh[0];
  }

  test('hostile shop: a fresh card for the hostile scenarios', async () => {
    const { S, say } = ctx();
    await S.swapCard(HOSTILE_CARD, HOSTILE_BALANCE);
    say(`card ${HOSTILE_CARD} with ${HOSTILE_BALANCE / 100} EUR in the reader`);
  });

  test('Pay is not live the instant it appears: a click right away pays nothing', async () => {
    const { B, say } = ctx();
    const w = await B.buy('tea');
    await w.waitForSelector('body[data-state="confirming"]');
    assert.ok(await w.isDisabled('[data-testid="pay"]'), 'Pay is disabled right after it appeared');
    await w.click('[data-testid="pay"]', { force: true }); // a click the page provoked
    await w.waitForSelector('[data-testid="pay"]:not([disabled])');
    assert.equal(await w.getAttribute('body', 'data-state'), 'confirming', 'the early click paid nothing');
    assert.equal(await B.cardBalance(), balance);
    await w.evaluate(() => window.dispatchEvent(new Event('focus')));
    assert.ok(await w.isDisabled('[data-testid="pay"]'), 'disabled again when the window comes back to the front');
    await B.pressPay(w);
    await B.shop.waitForSelector('#order-status[data-status="paid"]');
    balance -= TEA;
    assert.equal(await B.cardBalance(), balance);
    say('Pay: a click at once did nothing; disabled again on focus; then paid 12.50');
    await w.close();
  });

  test('hostile shop rushing TICKs: the card is charged by the confirmed period only', async () => {
    const { S, B, say } = ctx();
    const shown = 3; // the period the shop shows; its SAM ticks every second
    S.proxy.use(async (c) => {
      if (!c.path.startsWith('/v1/checkout/payments/')) return null;
      const r = await c.forward();
      if (!String(r.headers['content-type']).includes('json')) return r;
      return rewriteJson(r, (v) => { if (v.time_cycle) v.time_cycle.period_seconds = shown; });
    });
    try {
      const w = await B.buy('parking');
      await w.waitForSelector('body[data-state="confirming"]');
      assert.equal(await B.text(w, 'period'), `${shown} seconds`);
      const t0 = await B.pressPay(w);
      await w.waitForFunction(() => /^3 of 10 periods charged/.test(document.querySelector('[data-testid="running"]').textContent), null, { timeout: 20000 });
      const elapsed = performance.now() - t0;
      await w.click('[data-testid="stop"]');
      await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 20000 });
      await w.waitForSelector('body[data-state="succeeded"]');
      const order = await B.shopOrder(await B.orderId());
      const allowed = 1 + Math.floor(elapsed / (shown * 1000));
      say(`rushing shop: ${order.charged_units} units charged in ${Math.round(elapsed)} ms at a confirmed ${shown} s period (at most ${allowed})`);
      assert.ok(order.charged_units <= allowed, `${order.charged_units} units in ${Math.round(elapsed)} ms`);
      assert.ok(order.charged_units >= 2, 'the cycle did run');
      balance -= order.charged_total;
      assert.equal(await B.cardBalance(), balance, 'the card fell by exactly the units charged');
      assert.deepEqual(await B.pendingRecords(), []);
      await w.close();
    } finally {
      S.proxy.clear();
    }
  });

  test('every proxy status on the DEBIT answer delivery: paid, debited once', async () => {
    const { S, say } = ctx();
    const statuses = [[408, 'Request Timeout'], [429, 'Too Many Requests'], [403, 'Forbidden'], [502, 'Bad Gateway'], [503, 'Service Unavailable'], [504, 'Gateway Timeout']];
    try {
      for (const [status, title] of statuses) {
        let hits = 0;
        S.proxy.use(async (c) => {
          if (c.method !== 'POST' || !c.path.endsWith('/answer') || hits++ > 0) return null;
          return htmlPage(status, title); // the answer never reached the plugin
        });
        await payTea(`HTML ${status}`);
        assert.ok(hits >= 2, `${status}: the answer was sent again`);
      }
      // The plugin took the answer, but the proxy lost its reply: sent again, taken once.
      let hits = 0;
      S.proxy.use(async (c) => {
        if (c.method !== 'POST' || !c.path.endsWith('/answer') || hits++ > 0) return null;
        await c.forward();
        return htmlPage(502, 'Bad Gateway');
      });
      await payTea('taken, then 502');
      say(`proxy pages ${statuses.map((s) => s[0]).join(', ')} and a lost reply on the DEBIT answer: each payment paid, debited once`);
    } finally {
      S.proxy.clear();
    }
  });

  /**
   * The extension's own copy of the DEBIT answer never gets stored (the fault the test
   * cannot cause by timing): when the flow stores it, the service worker freezes there.
   * Gives {frozen}: resolves once it is frozen (the card has answered; the host holds
   * its copy).
   */
  async function freezeBeforeStoring(B) {
    const frozen = B.browser.worker.waitForEvent('console', { predicate: (m) => m.text().includes('[e2e] frozen'), timeout: 30000 });
    await B.browser.worker.evaluate(() => {
      const st = globalThis.purse.pending.storage;
      const set = st.set;
      st.set = (k, v) => {
        if (Object.values(v ?? {}).some((r) => r.kind === 'answer')) {
          console.info('[e2e] frozen before storing the DEBIT answer');
          return new Promise(() => {});
        }
        return set(k, v);
      };
    });
    return { frozen };
  }

  /**
   * Stops the extension's service worker as the browser does (DevTools' "stop", over
   * CDP from one of the extension's pages) and resolves once it is stopped. Playwright's
   * worker handle then evaluates in the worker's next start.
   */
  async function stopWorker(B, extensionPage) {
    const cdp = await B.browser.context.newCDPSession(extensionPage);
    const script = B.browser.worker.url();
    const seen = new Map();
    let changed = () => {};
    cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
      for (const v of versions) seen.set(v.versionId, v);
      changed();
    });
    const waitFor = async (status) => {
      for (;;) {
        const mine = [...seen.values()].filter((v) => v.scriptURL === script);
        if (mine.length && mine.every((v) => v.runningStatus === status)) return mine;
        await new Promise((r) => { changed = r; });
      }
    };
    await cdp.send('ServiceWorker.enable');
    const running = (await waitFor('running')).map((v) => v.versionId);
    for (const versionId of running) await cdp.send('ServiceWorker.stopWorker', { versionId });
    await waitFor('stopped');
    await cdp.detach();
  }

  /** Resolves once the extension keeps no record (its storage's change events). */
  function nothingKept(B) {
    return B.browser.worker.evaluate(() => new Promise((resolve) => {
      const check = async () => {
        const all = (await chrome.storage.local.get('pendingDeliveries')).pendingDeliveries ?? {};
        if (Object.keys(all).length > 0) return;
        chrome.storage.onChanged.removeListener(check);
        resolve();
      };
      chrome.storage.onChanged.addListener(check);
      check();
    }));
  }

  test('the extension restarted between the DEBIT and its delivery: the held answer is delivered, paid once', async () => {
    const { B, say } = ctx();
    const before = await heldIds();
    const { frozen } = await freezeBeforeStoring(B);
    const w = await B.buy('tea');
    const id = await B.orderId();
    await B.pressPay(w);
    await frozen;
    await stopWorker(B, w);
    assert.equal((await B.shopOrder(id)).status, 'processing', 'the shop has no answer yet');
    const held = await newlyHeld(before);
    // The shopper opens the popup: the worker starts again and delivers what it kept.
    const popup = await B.browser.context.newPage();
    await popup.goto(w.url().replace(/ui\/confirm\.html.*$/, 'ui/popup.html'));
    const order = await B.orderReaches(id, 'paid');
    assert.equal(order.charged_total, TEA);
    await nothingKept(B);
    balance -= TEA;
    assert.equal(await B.cardBalance(), balance, 'debited once');
    assert.ok(!(await heldIds()).includes(held), "the host's held copy was delivered and acknowledged");
    say('service worker stopped between the DEBIT and storing its answer: at its next start the host\'s held copy went to the shop; paid once');
    await popup.close();
    await w.close();
    // The page's own request died with the worker (it still shows "Paying…"): the
    // shopper reloads it.
    await B.shop.reload();
    await B.shop.waitForFunction(() => window.PurseCheckout !== undefined);
  });

  test('the browser killed between the DEBIT and its delivery: paid once after the restart', async () => {
    const { B, say } = ctx();
    const before = await heldIds();
    const { frozen } = await freezeBeforeStoring(B);
    const w = await B.buy('tea');
    const id = await B.orderId();
    await B.pressPay(w);
    await frozen;
    const held = await newlyHeld(before);
    await B.kill();
    say('browser killed after the card answered; started again');
    const order = await B.orderReaches(id, 'paid');
    assert.equal(order.charged_total, TEA);
    await nothingKept(B);
    balance -= TEA;
    assert.equal(await B.cardBalance(), balance, 'debited once');
    assert.ok(!(await heldIds()).includes(held), "the host's held copy was delivered and acknowledged");
    say('after the browser was killed the held answer reached the shop: paid once');
  });

  test("a recovery in which the shop asks for the card's other records: refused, nothing leaked", async () => {
    const { S, B, say } = ctx();
    const leaked = [];
    let evil = null; // the commands the shop slips in before the real proof
    let real = null;
    let nt = null;
    S.proxy.use(async (c) => {
      if (c.method !== 'POST' || !/^\/v1\/checkout\/recoveries\/[^/]+$/.test(c.path)) return null;
      const { response } = c.json();
      if (nt === null && typeof response === 'string' && response.length === 88) nt = parseInt(response.slice(16, 24), 16) - 1;
      if (evil && real) {
        leaked.push(response); // the card's answer to an evil command, if any reached us
        const next = evil.shift() ?? null;
        if (next) return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...real, command: next }) };
        const out = real;
        evil = null;
        return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(out) };
      }
      const r = await c.forward();
      const v = JSON.parse(r.body.toString('utf8'));
      if (evil === null && real === null && typeof v.command === 'string' && v.command.startsWith('805a')) {
        real = v;
        // Another payment's record (an earlier NT when there is one), a future NT, a SELECT.
        evil = [proofCommand(nt > 1 ? nt - 1 : nt + 1), proofCommand(nt + 7), '00a4040007f045505552534500'];
        return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...v, command: evil.shift() }) };
      }
      return { status: r.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) };
    });
    try {
      const w = await B.buy('tea');
      await w.waitForSelector('body[data-state="confirming"]');
      await control(S.control, 'pull-after 54'); // the card debits, then leaves without answering
      await B.pressPay(w);
      await w.waitForSelector('body[data-state="recovering"]');
      await control(S.control, 'insert');
      await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 20000 });
      balance -= TEA;
      assert.equal(await B.cardBalance(), balance, 'debited once');
      assert.ok(nt >= 1, 'the recovery ran through the hostile shop');
      assert.equal(leaked.length, 3, 'the shop asked for two other records and a SELECT');
      assert.deepEqual(leaked, [null, null, null], 'no record of another payment or shop reached the shop');
      assert.deepEqual(await B.pendingRecords(), []);
      say(`recovery: the shop asked for two other NTs' records and a SELECT: refused; its own NT ${nt} recovered: paid once`);
      await w.close();
    } finally {
      S.proxy.clear();
    }
  });
}
