// The Pay click to the shop's paid status, measured in both browsers in one run (issue
// 14): the real stack of run.mjs (shop plugin, demo shop, native host on pcscd + vpcd,
// card emulator), a fresh card holding enough for every payment, then N single purchases
// in Chromium and N in Firefox ESR. Prints median, p95 and the extremes per browser, side
// by side: Pay click -> the shop page shows paid, as the browser's own clocks see it (the
// click event's time in the confirmation window, the moment the shop page's status turns
// paid) and as the driver sees it (which adds its own click and wait round trips); and
// the extension's Pay -> the plugin said succeeded. A benchmark, not a test: it prints.
// `node e2e/bench.mjs [--payments N] [--browser chromium --browser firefox]` (pcscd must
// run; scripts/test-all and scripts/demo start it). Default: 20 payments, both browsers.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../tools/build.mjs';
import { stopAll } from './lib/procs.mjs';
import { openSession } from './lib/session.mjs';
import { bringUp, missingBinaries, binDir } from './lib/stack.mjs';

const { values } = parseArgs({ options: { payments: { type: 'string', default: '20' }, browser: { type: 'string', multiple: true } } });
const N = Number(values.payments);
const BROWSERS = values.browser ?? ['chromium', 'firefox'];
if (!Number.isInteger(N) || N < 1) throw new Error(`--payments must be a positive integer, not ${values.payments}`);
const WORK = join(process.env.PURSE_E2E_WORK ?? join(ROOT, '..', 'target', 'e2e'), 'bench');
const TEA = 1250;
const say = (m) => console.error(`[bench] ${m}`);

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** N payments of a tea in `browser`; returns the shop's and the extension's times (ms). */
async function measure(S, browser) {
  const B = await openSession(S, { artifacts: S.dir, browser });
  const shop = [];
  const inPage = [];
  const ext = [];
  try {
    if (!B.found) throw new Error(`${browser}: the shop page did not find the extension`);
    for (let i = 0; i < N; i++) {
      const w = await B.buy('tea');
      await w.waitForSelector('body[data-state="confirming"]');
      await w.evaluate(() => addEventListener('click', (e) => { window.benchClickAt = performance.timeOrigin + e.timeStamp; }, { capture: true, once: true }));
      const paidAt = B.shop.evaluate(() => new Promise((resolve) => {
        const el = document.querySelector('#order-status');
        new MutationObserver((_, o) => {
          if (el.dataset.status === 'paid') { o.disconnect(); resolve(performance.timeOrigin + performance.now()); }
        }).observe(el, { attributes: true });
      }));
      const t0 = await B.pressPay(w);
      await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 15000 });
      shop.push(performance.now() - t0);
      inPage.push((await paidAt) - (await w.evaluate(() => window.benchClickAt)));
      await w.waitForSelector('body[data-state="succeeded"]');
      ext.push(Number(await w.getAttribute('body', 'data-pay-ms')));
      await w.close();
    }
  } finally {
    await B.close();
  }
  return { shop, inPage, ext };
}

function row(label, xs) {
  const s = [...xs].sort((a, b) => a - b);
  const f = (v) => v.toFixed(1).padStart(8);
  return `${label.padEnd(38)}${f(quantile(s, 0.5))}${f(quantile(s, 0.95))}${f(s[0])}${f(s.at(-1))}`;
}

const missing = missingBinaries();
if (missing.length) throw new Error(`missing binaries in ${binDir()}: ${missing.join(', ')} (cargo build --workspace)`);
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
const S = await bringUp({ base: WORK, say });
try {
  const results = {};
  for (const [i, browser] of BROWSERS.entries()) {
    // A fresh card per browser, holding exactly what its payments need.
    await S.swapCard(`10000000000001${String(i + 10)}`, N * TEA);
    say(`${browser}: ${N} payments`);
    results[browser] = await measure(S, browser);
  }
  console.log(`Pay click -> shop shows paid, ${N} payments per browser (ms)`);
  console.log(`${''.padEnd(38)}${'median'.padStart(8)}${'p95'.padStart(8)}${'min'.padStart(8)}${'max'.padStart(8)}`);
  for (const [browser, r] of Object.entries(results)) {
    console.log(row(`${browser}: Pay -> shop paid (browser)`, r.inPage));
    console.log(row(`${browser}: Pay -> shop paid (driver)`, r.shop));
    console.log(row(`${browser}: Pay -> plugin succeeded`, r.ext));
  }
} finally {
  await S.host.close().catch(() => {});
  await S.proxy.close().catch(() => {});
  await stopAll();
}
