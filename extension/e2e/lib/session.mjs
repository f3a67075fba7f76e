// One browser session against the stack: the shop's page, the extension's confirmation
// windows, and what the shop, the card and the extension's storage say. Shared by the
// end-to-end test (run.mjs) and the browser demo (demo.mjs). The browser is Chromium or
// Firefox (lib/driver-*.mjs); its pages answer the same calls in both.

import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, ROOT } from '../../tools/build.mjs';
import * as chromium from './driver-chromium.mjs';
import * as firefox from './driver-firefox.mjs';

export const DRIVERS = { chromium, firefox };

/** Starts the browser on its profile in the stack and opens the shop's page. */
async function start(S, driver, extensionDir, swLog) {
  const log = (line) => swLog.write(`${new Date().toISOString()} ${line}\n`);
  const browser = await driver.start({ profile: S.profiles[driver.name], extensionDir, home: S.home, log });
  const shop = await browser.newPage();
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

/** A session in `browser` (chromium or firefox); screenshots are named `<browser>-<name>.png`. */
export async function openSession(S, { artifacts, browser = 'chromium' }) {
  const driver = DRIVERS[browser];
  if (!driver) throw new Error(`unknown browser ${browser}: one of ${Object.keys(DRIVERS).join(', ')}`);
  const extensionDir = build(browser);
  const swLog = createWriteStream(join(S.dir, `extension-${browser}.log`), { flags: 'a' });
  const s = {
    ...(await start(S, driver, extensionDir, swLog)),
    browserName: browser,
    extensionDir: join(ROOT, 'dist', browser),

    /** Quits the browser and starts it again on the same profile (the extension's next start). */
    async restart() {
      await s.browser.close();
      Object.assign(s, await start(S, driver, extensionDir, swLog));
    },

    /**
     * Kills the browser as a crash or a power cut would (SIGKILL to its main process,
     * found by its profile among our own children) and starts it again on the profile.
     */
    async kill() {
      const pid = s.browser.pid ?? browserPid(S.profiles[browser]);
      const closed = s.browser.closed();
      process.kill(pid, 'SIGKILL');
      await closed;
      Object.assign(s, await start(S, driver, extensionDir, swLog));
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
      const opened = await s.browser.watchWindow('/ui/confirm.html', { timeout: 15000 });
      await s.shop.click(`button[data-product="${product}"]`);
      const w = await opened();
      await w.waitForSelector('body[data-state]:not([data-state="loading"])');
      return w;
    },

    /** Presses Pay once it is enabled; returns the time of the click. */
    async pressPay(w) {
      try {
        await w.waitForSelector('[data-testid="pay"]:not([disabled])');
      } catch (e) {
        // What held Pay: the window's own account of its delay, focus and visibility.
        const seen = await w.evaluate(() => JSON.stringify({
          ...document.body.dataset,
          payDisabled: document.querySelector('[data-testid="pay"]').disabled,
          headline: document.querySelector('[data-testid="headline"]')?.textContent,
          focused: document.hasFocus(),
          visibility: document.visibilityState,
        })).catch((err) => `(window not readable: ${err.message})`);
        throw new Error(`Pay never became live: ${seen}`, { cause: e });
      }
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
      return Object.keys((await s.browser.storageGet('pendingDeliveries')) ?? {});
    },

    async shot(w, name) {
      await w.screenshot({ path: join(artifacts, `${browser}-${name}.png`) });
    },

    close: () => s.browser.close(),
  };
  return s;
}
