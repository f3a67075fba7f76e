// One browser session against the stack: the shop's page, the extension's confirmation
// windows, and what the shop, the card and the extension's storage say. Shared by the
// end-to-end test (run.mjs) and the browser demo (demo.mjs).

import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, ROOT } from '../../tools/build.mjs';
import { launch } from './browser.mjs';

/** Starts Chromium on the stack's profile and opens the shop's page. */
async function start(S, extensionDir, swLog) {
  const browser = await launch({ profile: S.profile, extensionDir, env: { HOME: S.home } });
  browser.worker.on('console', (m) => swLog.write(`${new Date().toISOString()} ${m.type()} ${m.text()}\n`));
  const shop = await browser.context.newPage();
  await shop.goto(S.shopOrigin);
  await shop.waitForFunction(() => window.PurseCheckout !== undefined);
  const found = await shop.evaluate(() => window.PurseCheckout.detect({ timeoutMs: 5000 }));
  return { browser, shop, found };
}

/** The pid of the browser this process started on `profile`. */
function browserPid(profile) {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').some((a) => a === `--user-data-dir=${profile}` || a === profile)) return Number(d);
    } catch {
      // the process went away meanwhile
    }
  }
  throw new Error(`no browser of ours runs on ${profile}`);
}

export async function openSession(S, { artifacts }) {
  const extensionDir = build('chromium');
  const swLog = createWriteStream(join(S.dir, 'extension.log'), { flags: 'a' });
  const s = {
    ...(await start(S, extensionDir, swLog)),
    extensionDir: join(ROOT, 'dist', 'chromium'),

    /** Quits the browser and starts it again on the same profile (the extension's next start). */
    async restart() {
      await s.browser.context.close();
      Object.assign(s, await start(S, extensionDir, swLog));
    },

    /**
     * Kills the browser as a crash or a power cut would (SIGKILL to its main process,
     * found by its profile among our own children) and starts it again on the profile.
     */
    async kill() {
      const pid = browserPid(S.profile);
      const closed = new Promise((r) => s.browser.context.once('close', r));
      process.kill(pid, 'SIGKILL');
      await closed;
      Object.assign(s, await start(S, extensionDir, swLog));
    },

    /** Waits for the extension's next service worker (after it reloaded itself). */
    async nextWorker(reloaded) {
      const worker = await reloaded;
      worker.on('console', (m) => swLog.write(`${new Date().toISOString()} ${m.type()} ${m.text()}\n`));
      s.browser.worker = worker;
      return worker;
    },

    /** Waits (on the shop's long-poll) until an order reaches `status`; returns the order. */
    async orderReaches(id, status, timeoutMs = 30000) {
      const deadline = Date.now() + timeoutMs;
      let after = 0;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`order ${id} did not become ${status} within ${timeoutMs} ms`);
        const r = await (await fetch(`${S.shopOrigin}/events?order=${encodeURIComponent(id)}&after=${after}&timeout_ms=${Math.min(left, 25000)}`)).json();
        after = r.last;
        const hit = r.events.find((e) => e.order.status === status);
        if (hit) return hit.order;
      }
    },

    /** Clicks Buy and returns the extension's confirmation window. */
    async buy(product) {
      const opened = s.browser.context.waitForEvent('page', { timeout: 15000 });
      await s.shop.click(`button[data-product="${product}"]`);
      const w = await opened;
      await w.waitForURL(/\/ui\/confirm\.html/);
      await w.waitForSelector('body[data-state]:not([data-state="loading"])');
      return w;
    },

    /** Presses Pay once it is enabled; returns the time of the click. */
    async pressPay(w) {
      await w.waitForSelector('[data-testid="pay"]:not([disabled])');
      const t0 = performance.now();
      await w.click('[data-testid="pay"]');
      return t0;
    },

    async orderId() {
      return (await s.shop.textContent('#order-id')).trim();
    },

    async shopOrder(id) {
      return (await fetch(`${S.shopOrigin}/orders/${encodeURIComponent(id)}`)).json();
    },

    /** The webhook event types the shop took for an order. */
    async webhookCauses(id) {
      const r = await (await fetch(`${S.shopOrigin}/events?order=${encodeURIComponent(id)}&after=0&timeout_ms=1`)).json();
      return r.events.map((e) => e.cause);
    },

    /** The card's balance; while the extension's host still holds the card (busy), asked again until it lets go. */
    async cardBalance(timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          return (await S.host.card()).balance;
        } catch (e) {
          if (e.code !== 'busy' || Date.now() > deadline) throw e;
          await S.host.waitCard(true, 200).catch(() => {}); // a short wait on the reader, not a sleep
        }
      }
    },

    async text(w, id) {
      return (await w.textContent(`[data-testid="${id}"]`)).trim();
    },

    /** Payment ids with a card answer or a recovery kept in the extension's storage. */
    async pendingRecords() {
      return s.browser.worker.evaluate(async () => Object.keys((await chrome.storage.local.get('pendingDeliveries')).pendingDeliveries ?? {}));
    },

    async shot(w, name) {
      await w.screenshot({ path: join(artifacts, `${name}.png`) });
    },

    close: () => s.browser.context.close(),
  };
  return s;
}
