// The browser half of the README's main command (scripts/demo-browser): one real payment
// end to end, headless, printing each step and the time from the Pay click to the
// shop's paid status. Debian's Chromium with the extension, the demo shop's page, the
// shop plugin, the native host on pcscd + vpcd, the card emulator; then the day's
// settlement uploaded to the clearing office (HTTPS, the demo's own CA) and its decision
// and the merchant's payout.
// `node e2e/demo.mjs [work-dir]` (pcscd must run; binaries from $PURSE_BIN_DIR or
// target/debug).

import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join, resolve } from 'node:path';
import { ROOT } from '../tools/build.mjs';
import { chromiumId } from '../tools/extension-id.mjs';
import { run, start, stop, stopAll } from './lib/procs.mjs';
import { openSession } from './lib/session.mjs';
import { binDir, bringUp, missingBinaries, SAM_ID } from './lib/stack.mjs';

const work = resolve(process.argv[2] ?? join(ROOT, '..', 'target', 'demo-browser'));
const step = (m) => console.log(`== ${m}`);
const eur = (c) => `${(c / 100).toFixed(2)} EUR`;
const DEMO_MERCHANT = 'demo-shop';

async function must(what, cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r;
}

/**
 * The clearing office (clearing-office serve: SQLite, HTTPS with a certificate of the
 * demo's own CA, made with openssl), the demo shop's merchant and SAM registered through
 * the operator API, and the shop plugin restarted to upload to it (clearing_url, the SAM's
 * credential, the CA as tls_ca_file, the office's hotlist key). Returns `get(path)`.
 */
async function startOffice(S) {
  const dir = join(S.dir, 'office');
  mkdirSync(join(dir, 'spool'), { recursive: true, mode: 0o700 });
  const o = (n) => join(dir, n);
  const ssl = (what, args) => must(`openssl ${what}`, 'openssl', args);
  await ssl('CA key', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', o('ca.key')]);
  await ssl('CA certificate', ['req', '-x509', '-new', '-key', o('ca.key'), '-subj', '/CN=Purse demo CA', '-days', '2', '-out', o('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  await ssl('office key', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', o('key.pem')]);
  await ssl('office request', ['req', '-new', '-key', o('key.pem'), '-subj', '/CN=127.0.0.1', '-out', o('office.csr')]);
  writeFileSync(o('office.ext'), 'basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await ssl('office certificate', ['x509', '-req', '-in', o('office.csr'), '-CA', o('ca.pem'), '-CAkey', o('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', o('office.ext'), '-out', o('cert.pem')]);
  chmodSync(o('key.pem'), 0o600);
  writeFileSync(o('issuer-keys.json'), readFileSync(S.issuerKeys), { mode: 0o600 });
  const hotlist = (await must('clearing-office hotlist-key', join(binDir(), 'clearing-office'), ['hotlist-key', '--out', o('hotlist.key')])).stdout.trim();
  const token = randomBytes(32).toString('hex');
  writeFileSync(o('office.toml'), [
    'listen = "127.0.0.1:0"', 'database = "sqlite:office.db"', 'issuer_keys = "issuer-keys.json"', 'hotlist_key = "hotlist.key"',
    `operator_token_sha256 = ["${createHash('sha256').update(token).digest('hex')}"]`, `spool_dir = "${o('spool')}"`,
    '[tls]', 'cert = "cert.pem"', 'key = "key.pem"', ''].join('\n'));
  const { match } = await start('clearing-office', join(binDir(), 'clearing-office'), ['serve', '--config', o('office.toml')],
    { log: o('clearing-office.log'), ready: /listening on (\S+) \(https\)/ });
  const url = `https://${match[1]}`;
  step(`the clearing office on ${url} (SQLite ${o('office.db')}, HTTPS with a certificate of the demo's CA ${o('ca.pem')})`);
  const ca = readFileSync(o('ca.pem'));
  const call = (method, path, body) => new Promise((res, rej) => {
    const req = https.request(`${url}${path}`, { method, ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (r) => {
      let text = '';
      r.on('data', (c) => { text += c; });
      r.on('end', () => {
        if (r.statusCode >= 300) rej(new Error(`${method} ${path}: HTTP ${r.statusCode} ${text}`));
        else res(JSON.parse(text));
      });
    });
    req.on('error', rej);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
  await call('POST', '/v1/merchants', { id: DEMO_MERCHANT, name: 'The demo shop' });
  const sam = await call('POST', '/v1/sams', { sam_id: SAM_ID, merchant_id: DEMO_MERCHANT, currency: 978, key_version: 1, card_key_versions: [1] });
  step(`operator API: merchant ${DEMO_MERCHANT} registered, its SAM ${SAM_ID} (EUR, key version 1) with an upload credential (shown once)`);

  const plugin = join(S.dir, 'plugin');
  writeFileSync(join(plugin, 'clearing-credential'), `${sam.credential}\n`, { mode: 0o600 });
  const text = readFileSync(S.config, 'utf8');
  const first = text.search(/^\[/m);
  const configured = `${text.slice(0, first)}tls_ca_file = "${o('ca.pem')}"\n\n${text.slice(first)}`.replace(/^\[settlement\]\n/m,
    `[settlement]\nclearing_url = "${url}"\nclearing_credential_file = "clearing-credential"\nhotlist_public_key = "${hotlist}"\n`);
  await stop(S.plugin);
  writeFileSync(S.config, configured);
  const restarted = await start('shop-plugin', join(binDir(), 'shop-plugin'), ['--config', S.config, 'serve'], { env: S.sam.env, log: join(S.dir, 'shop-plugin.log'), ready: /listening on/ });
  S.plugin = restarted.child;
  step(`shop plugin restarted with settlement.clearing_url = "${url}", the SAM's credential, the CA as tls_ca_file and the office's hotlist key`);
  return { url, get: (path) => call('GET', path) };
}

async function main() {
  const missing = missingBinaries().concat(existsSync(join(binDir(), 'clearing-office')) ? [] : ['clearing-office']);
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

    const office = await startOffice(S);
    step('the daily settlement: shop-plugin settle (closes the period and uploads the batch to the clearing office)');
    const settle = await S.run('shop-plugin', ['--config', S.config, 'settle']);
    process.stdout.write(settle.stdout);
    if (settle.code !== 0) throw new Error(`settle failed (${settle.code}): ${settle.stdout}${settle.stderr}`);
    const list = await S.run('shop-plugin', ['--config', S.config, 'batches', 'list', '--json']);
    const [row] = list.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const d = row?.answer;
    if (d?.decision !== 'accepted') throw new Error(`the clearing office did not accept the batch: ${list.stdout}`);
    step(`the office's decision on batch ${d.close_seq} of SAM ${d.sam_id} (shop-plugin batches list): ${d.decision}, ${d.transaction_count} transaction(s), gross ${eur(d.gross)}, ${d.problem_count} problem(s)`);
    const payouts = await office.get(`/v1/merchants/${DEMO_MERCHANT}/payouts`);
    const po = payouts.data?.[0];
    if (!po || po.amount !== order.charged_total) throw new Error(`the merchant's payout is not the payment: ${JSON.stringify(payouts)}`);
    step(`the merchant's payout (office API GET /v1/merchants/${DEMO_MERCHANT}/payouts): ${po.id} to ${po.merchant_id} on ${po.day}, ${po.transaction_count} transaction(s), gross ${eur(po.amount)}, fee ${eur(po.fee)}, net ${eur(po.amount - po.fee)}`);
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
