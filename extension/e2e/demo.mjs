// The browser half of the README's main command (scripts/demo-browser): one real payment
// end to end, headless, printing each step and the time from the Pay click to the
// shop's paid status. Debian's Chromium with the extension, the demo shop's page, the
// shop plugin, the native host on pcscd + vpcd, the card emulator; then the day's
// settlement and the clearing office's acceptance of the batch.
// `node e2e/demo.mjs [work-dir]` (pcscd must run; binaries from $PURSE_BIN_DIR or
// target/debug).

import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from '../tools/build.mjs';
import { chromiumId } from '../tools/extension-id.mjs';
import { stopAll } from './lib/procs.mjs';
import { openSession } from './lib/session.mjs';
import { binDir, bringUp, missingBinaries } from './lib/stack.mjs';

const work = resolve(process.argv[2] ?? join(ROOT, '..', 'target', 'demo-browser'));
const step = (m) => console.log(`== ${m}`);
const eur = (c) => `${(c / 100).toFixed(2)} EUR`;

async function main() {
  const missing = missingBinaries();
  if (missing.length) throw new Error(`missing binaries in ${binDir()}: ${missing.join(', ')}`);
  mkdirSync(work, { recursive: true });
  const S = await bringUp({ base: work, say: step });
  let B;
  try {
    B = await openSession(S, { artifacts: S.dir });
    step(`Chromium (headless) with the Purse extension ${chromiumId()}; the shop page at ${S.shopOrigin}`);
    if (!B.found) throw new Error('the shop page did not find the extension');
    const before = await B.cardBalance();
    step(`the card holds ${eur(before)}; the shopper clicks "Buy" for "Green tea, 100 g"`);
    const w = await B.buy('tea');
    await w.waitForSelector('body[data-state="confirming"]');
    step(`the extension's own confirmation window: shop ${await B.text(w, 'shop-origin')}, "${await B.text(w, 'description')}", ${await B.text(w, 'amount')}, card ${await B.text(w, 'balance')}`);
    await B.shot(w, 'confirmation');
    step('the shopper presses Pay: INITIALIZE and DEBIT go between the shop plugin and the card through the native host');
    const t0 = await B.pressPay(w);
    await B.shop.waitForSelector('#order-status[data-status="paid"]', { timeout: 15000 });
    const ms = performance.now() - t0;
    await w.waitForSelector('body[data-state="succeeded"]');
    await B.shot(w, 'result');
    const id = await B.orderId();
    const order = await B.shopOrder(id);
    const after = await B.cardBalance();
    step(`the shop shows order ${id} paid: ${eur(order.charged_total)} (signed webhooks received: ${(await B.webhookCauses(id)).filter((c) => c.startsWith('payment.')).join(', ')})`);
    step(`time from the Pay click to the shop's paid status: ${ms.toFixed(1)} ms`);
    step(`the card: ${eur(before)} -> ${eur(after)} (the confirmation shows the new balance ${await B.text(w, 'new-balance')})`);
    if (before - after !== order.charged_total) throw new Error('the card did not fall by exactly the amount');
    await B.close();
    B = null;

    step('the daily settlement: shop-plugin settle');
    const settle = await S.run('shop-plugin', ['--config', S.config, 'settle']);
    process.stdout.write(settle.stdout);
    if (settle.code !== 0) throw new Error(`settle failed: ${settle.stderr}`);
    const [batchFile] = S.batches();
    const batch = JSON.parse(readFileSync(batchFile, 'utf8'));
    step(`the clearing office checks the batch (${batch.transactions.length} transaction): purse-issuer clear`);
    const clear = await S.run('purse-issuer', ['clear', '--keys', S.issuerKeys, '--state', S.clearingState, batchFile]);
    process.stdout.write(clear.stdout + clear.stderr);
    if (clear.code !== 0) throw new Error('the clearing office refused the batch');
    step(`done: screenshots and logs in ${S.dir}`);
  } finally {
    await B?.close().catch(() => {});
    await S.host.close().catch(() => {});
    await stopAll();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`browser demo failed: ${e.message}`);
  stopAll().finally(() => process.exit(1));
});
