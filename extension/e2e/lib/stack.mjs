// The real parts of one end-to-end run, brought up in a fresh directory: the issuer's
// keys, the shop's SAM card and a purse card holding 100.00 EUR (purse-issuer), the SAM
// card in its own reader "Shop SAM reader 00 00" of the shop's own PC/SC service
// (scripts/shop-pcscd: a pcscd of its own; sam-emulator on its vpcd), the purse card in
// the shopper's reader "Virtual PCD 00 00" of the shared pcscd (card-emulator), the shop
// plugin driving the SAM through PC/SC (init --sam-reader + serve, SQLite on disk; no
// purse key on its disk), the demo shop (demo-shop) taking the plugin's webhooks, and the
// native host registered for the extension's fixed ids (native-host install: for Chromium
// its manifest copied into the profile's NativeMessagingHosts/, for Firefox where Firefox
// reads it, $HOME/.mozilla/native-messaging-hosts/, HOME being the run's). Browsers reach
// the plugin through a proxy (hostile-proxy.mjs), transparent until a test gives it a rule.

import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { chromiumId, firefoxId } from '../../tools/extension-id.mjs';
import { ROOT } from '../../tools/build.mjs';
import { HostClient } from './host-client.mjs';
import { startProxy } from './hostile-proxy.mjs';
import { run, start, stop } from './procs.mjs';

export const BINARIES = ['purse-issuer', 'card-emulator', 'sam-emulator', 'native-host', 'shop-plugin', 'demo-shop'];
export const SAM_ID = '5a00000000000001';
export const CARD_ID = '1000000000000001';
export const START_BALANCE = 10000;
/** The shop's PC/SC service (scripts/shop-pcscd), run for the shop's side alone. */
const SHOP_PCSCD = join(ROOT, '..', 'scripts', 'shop-pcscd');

/** Where the built binaries are: $PURSE_BIN_DIR, else target/debug of the repository. */
export function binDir() {
  return resolve(process.env.PURSE_BIN_DIR ?? join(ROOT, '..', 'target', 'debug'));
}

/** The binaries that are missing (an empty list when all are built). */
export function missingBinaries(dir = binDir()) {
  return BINARIES.filter((b) => !existsSync(join(dir, b)));
}

function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function must(step, cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${step} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r;
}

/** A fresh directory for one run under `base` (mode 0700). */
export function runDir(base) {
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, 'run-'));
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * The card side of a run in `dir`: a purse card `cardId` issued under `issuerKeys` with 100.00 EUR
 * in the reader "Virtual PCD 00 00" (card emulator on vpcd), and the native host
 * registered for both browsers, HOME being `dir`/home. bringUp adds the shop plugin and
 * the demo shop; the pretix run (pretix.mjs) takes its shop from integrations/pretix.
 */
export async function bringUpCard({ dir, issuerKeys, cardId = CARD_ID, say = () => {} }) {
  const b = (n) => join(binDir(), n);
  const f = (n) => join(dir, n);
  const home = f('home');
  const profile = f('profile');
  mkdirSync(home, { recursive: true });
  mkdirSync(join(profile, 'NativeMessagingHosts'), { recursive: true });
  say('issuer: a purse card with 100.00 EUR');
  await must('card issue', b('purse-issuer'), ['card', 'issue', '--keys', issuerKeys, '--card-id', cardId, '--kv', '1', '--currency', 'EUR', '--balance', String(START_BALANCE), '--out', f('card.json')]);

  const host = new HostClient(b('native-host'), { HOME: home });
  const status = await host.call({ type: 'status' });
  if (status.pcsc !== 'up' || !status.readers?.some((r) => r.name === 'Virtual PCD 00 00')) {
    throw new Error("pcscd is not running with vpcd's reader 'Virtual PCD 00 00' (scripts/test-all and scripts/demo start it: . scripts/lib/env.sh; start_pcscd)");
  }
  say("the card goes into the reader 'Virtual PCD 00 00' (card emulator on vpcd)");
  const emulator = await start('card-emulator', b('card-emulator'), ['--card', f('card.json'), '--control', f('card.ctl'), '--verbose'], { log: f('card-emulator.log'), ready: /inserted: connected/ });
  await host.waitCard(true);

  say(`native host registered for the extension ${chromiumId()}`);
  await must('native-host install', b('native-host'), ['install', '--browser', 'chromium', '--chrome-id', chromiumId(), '--binary', b('native-host')], { env: { HOME: home } });
  const hostManifest = join(home, '.config', 'chromium', 'NativeMessagingHosts', 'org.purse.native_host.json');
  // Chromium with --user-data-dir reads <profile>/NativeMessagingHosts/, not ~/.config.
  copyFileSync(hostManifest, join(profile, 'NativeMessagingHosts', 'org.purse.native_host.json'));
  say(`native host registered for the Firefox add-on ${firefoxId()}`);
  await must('native-host install', b('native-host'), ['install', '--browser', 'firefox', '--firefox-id', firefoxId(), '--binary', b('native-host')], { env: { HOME: home } });
  return {
    dir, home, profile, host, emulator: emulator.child, control: f('card.ctl'),
    /** Each browser's profile directory. */
    profiles: { chromium: profile, firefox: f('firefox-profile') },
    /** The host manifest each browser reads. */
    hostManifests: {
      chromium: join(profile, 'NativeMessagingHosts', 'org.purse.native_host.json'),
      firefox: join(home, '.mozilla', 'native-messaging-hosts', 'org.purse.native_host.json'),
    },
  };
}

/**
 * The shop's SAM card in `dir`: `purse-issuer sam issue-card` personalises it (keys,
 * counters and sealing key stay in its 0600 card file, which only the emulator reads),
 * the shop's own PC/SC service starts (scripts/shop-pcscd: on a real shop the SAM's
 * reader is on the shop's server, out of the shopper's sight; here both share a machine
 * and the shared pcscd is the shopper's), `sam-emulator` puts the card into its reader,
 * and the run waits until that pcscd sees it. Throws a clear error when the SAM does not
 * come up. Returns the reader and `env`, the environment of every shop-plugin command
 * (PCSCLITE_CSOCK_NAME: the shop's PC/SC service). Both are stopped by stopAll.
 */
export async function bringUpSam({ dir, issuerKeys, samId = SAM_ID, currency = 'EUR', say = () => {} }) {
  const b = (n) => join(binDir(), n);
  const f = (n) => join(dir, n);
  say(`issuer: the shop's SAM card ${samId} (${currency})`);
  await must('sam issue-card', b('purse-issuer'), ['sam', 'issue-card', '--keys', issuerKeys, '--sam-id', samId, '--currency', currency, '--key-version', '1', '--accept', '1', '--out', f('sam-card.json')]);
  let pcscd;
  try {
    pcscd = await start('shop-pcscd', SHOP_PCSCD, [f('shop-pcsc')], { log: f('shop-pcscd.log'), ready: /shop pcscd ready: PCSCLITE_CSOCK_NAME=(\S+) port=(\d+) reader=(.+) pid=/ });
  } catch (e) {
    throw new Error(`the shop's PC/SC service did not start (scripts/shop-pcscd needs root or sudo and vsmartcard-vpcd): ${e.message}`);
  }
  const [, socket, port, reader] = pcscd.match;
  const env = { PCSCLITE_CSOCK_NAME: socket };
  say(`the SAM card goes into its own reader '${reader}' of the shop's PC/SC service (sam-emulator on vpcd port ${port})`);
  let sam;
  try {
    sam = await start('sam-emulator', b('sam-emulator'), ['--card', f('sam-card.json'), '--vpcd-port', port, '--control', f('sam.ctl'), '--verbose'], { log: f('sam-emulator.log'), ready: /inserted: connected/ });
  } catch (e) {
    throw new Error(`the SAM card did not come up in '${reader}': ${e.message}`);
  }
  // pcscd notices the card on its own poll of vpcd: wait on its notification for this reader.
  const home = f('home');
  mkdirSync(home, { recursive: true });
  const probe = new HostClient(b('native-host'), { HOME: home, ...env });
  try {
    const r = await probe.call({ type: 'wait_card', reader, present: true, timeout_ms: 15000 });
    if (r.type !== 'card_event') throw new Error(`the SAM card did not come up in '${reader}': ${r.code}: ${r.detail} (log: ${f('sam-emulator.log')})`);
  } finally {
    await probe.close();
  }
  return { child: sam.child, pcscd: pcscd.child, reader, env, control: f('sam.ctl'), card: f('sam-card.json') };
}

/**
 * Brings the stack up under `base` (a fresh directory is made in it). `say(line)`
 * prints a step. Returns the handles the tests need.
 */
export async function bringUp({ base, say = () => {}, periodSecs = 1 }) {
  const bin = binDir();
  const b = (n) => join(bin, n);
  const dir = runDir(base);
  const f = (n) => join(dir, n);

  say('issuer: master keys');
  await must('keys add', b('purse-issuer'), ['keys', 'add', '--keys', f('issuer.json'), '--kv', '1']);
  const sam = await bringUpSam({ dir, issuerKeys: f('issuer.json'), say });

  const pluginPort = await freePort();
  const shopPort = await freePort();
  const shopOrigin = `http://127.0.0.1:${shopPort}`;
  const pluginUrl = `http://127.0.0.1:${pluginPort}`;
  say(`shop plugin on ${pluginUrl} (allowed origin ${shopOrigin}) driving the SAM in '${sam.reader}', demo shop on ${shopOrigin}`);
  const config = f('plugin/shop-plugin.toml');
  mkdirSync(f('plugin'), { recursive: true });
  const init = await must('shop-plugin init', b('shop-plugin'), ['--config', config, 'init', '--sam-reader', sam.reader, '--listen', `127.0.0.1:${pluginPort}`, '--allowed-origin', shopOrigin], { env: sam.env });
  const apiKey = init.stdout.trim().split('\n').at(-1).trim();
  if (!/^sk_[A-Za-z0-9_-]+$/.test(apiKey)) throw new Error('shop-plugin init printed no API key on its last line');
  writeFileSync(f('api-key'), `${apiKey}\n`, { mode: 0o600 });
  const plugin = await start('shop-plugin', b('shop-plugin'), ['--config', config, 'serve'], { env: sam.env, log: f('shop-plugin.log'), ready: /listening on/ });
  const proxy = await startProxy(pluginUrl);
  say(`browsers reach the plugin through the proxy ${proxy.url}`);
  const shop = await start('demo-shop', b('demo-shop'), [
    '--listen', `127.0.0.1:${shopPort}`, '--plugin', pluginUrl, '--plugin-public', proxy.url, '--api-key-file', f('api-key'),
    '--webhook-secret-file', f('plugin/webhook-secret'), '--period-secs', String(periodSecs),
  ], { log: f('demo-shop.log'), ready: /listening on/ });

  const card = await bringUpCard({ dir, issuerKeys: f('issuer.json'), say });
  const { host } = card;

  const S = {
    ...card, bin, sam, shopOrigin, pluginUrl: proxy.url, pluginDirect: pluginUrl, proxy, config, plugin: plugin.child, shop: shop.child,
    issuerKeys: f('issuer.json'), clearingState: f('clearing.json'), outbox: f('plugin/settlement-outbox'),
    batches: () => (existsSync(f('plugin/settlement-outbox')) ? readdirSync(f('plugin/settlement-outbox')).filter((n) => n.endsWith('.json')).map((n) => join(f('plugin/settlement-outbox'), n)) : []),
    /** Runs a binary; shop-plugin with the shop's PC/SC service (`sam.env`). */
    run: (name, args, opts = {}) => run(b(name), args, name === 'shop-plugin' ? { ...opts, env: { ...sam.env, ...opts.env } } : opts),

    /** Takes the card out for good and puts another in (a fresh card `cardId` holding `balance`). */
    async swapCard(cardId, balance) {
      const file = f(`card-${cardId}.json`);
      await must('card issue', b('purse-issuer'), ['card', 'issue', '--keys', f('issuer.json'), '--card-id', cardId, '--kv', '1', '--currency', 'EUR', '--balance', String(balance), '--out', file]);
      await stop(S.emulator);
      await host.waitCard(false);
      S.control = f(`card-${cardId}.ctl`);
      const next = await start('card-emulator', b('card-emulator'), ['--card', file, '--control', S.control, '--verbose'], { log: f(`card-emulator-${cardId}.log`), ready: /inserted: connected/ });
      S.emulator = next.child;
      await host.waitCard(true);
    },
  };
  return S;
}
