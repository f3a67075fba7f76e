// Firefox finds the native host where `native-host install` puts it (issue 14): a real
// Firefox ESR with the add-on from dist/firefox, HOME a fresh directory, the host
// registered with the README's command (`native-host install --browser firefox
// --firefox-id purse-checkout@purse.invalid`). The add-on's background connects to the
// host and gets its hello reply (the popup shows the host's version); Firefox started
// the host with the manifest it read and the add-on's id as arguments. Then the same
// manifest in ~/.config/mozilla/ (where Firefox keeps profiles, but never reads hosts)
// is not found. Last, the packaged .xpi (npm run package) installs and reaches the host
// the same way. `node --test e2e/firefox-host.mjs`; no pcscd needed.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build, ROOT } from '../tools/build.mjs';
import { firefoxId } from '../tools/extension-id.mjs';
import { packageAll } from '../tools/package.mjs';
import * as firefox from './lib/driver-firefox.mjs';
import { run } from './lib/procs.mjs';
import { binDir } from './lib/stack.mjs';

const WORK = process.env.PURSE_E2E_WORK ?? join(ROOT, '..', 'target', 'e2e');
const HOST = join(binDir(), 'native-host');
let dir;
let home;
const log = [];

before(async () => {
  mkdirSync(WORK, { recursive: true });
  dir = mkdtempSync(join(WORK, 'firefox-host-'));
  home = join(dir, 'home');
  mkdirSync(home);
  // The README's step, verbatim but for the binary's path.
  const r = await run(HOST, ['install', '--browser', 'firefox', '--firefox-id', 'purse-checkout@purse.invalid'], { env: { HOME: home } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(firefoxId(), 'purse-checkout@purse.invalid', "the README's id is the add-on's");
});

after(() => {
  if (process.exitCode === undefined || process.exitCode === 0) rmSync(dir, { recursive: true, force: true });
});

/** Starts Firefox on a fresh profile, opens the add-on's popup; returns its host line. */
async function popupHostLine(profileName, extensionDir = build('firefox')) {
  const d = await firefox.start({ profile: join(dir, profileName), extensionDir, home, log: (l) => log.push(l) });
  try {
    const p = await d.openExtensionPage('ui/popup.html');
    await p.waitForFunction(() => document.querySelector('[data-testid="host"]').textContent !== 'Checking…', null, { timeout: 20000 });
    const line = await p.textContent('[data-testid="host"]');
    log.push(...(await d.consoleMessages()));
    return line;
  } finally {
    await d.close();
  }
}

test('the add-on reaches the host installed in ~/.mozilla/native-messaging-hosts/ and gets its hello', async () => {
  const manifest = join(home, '.mozilla', 'native-messaging-hosts', 'org.purse.native_host.json');
  const line = await popupHostLine('profile-1');
  assert.match(line, /^native host \d+\.\d+\.\d+, card service /, line);
  const started = log.find((l) => l.includes('serving native messaging (caller:'));
  assert.ok(started, `the host's start line is not in Firefox's output:\n${log.join('\n')}`);
  assert.ok(started.includes(`(caller: ${manifest} purse-checkout@purse.invalid)`), started);
});

test('a manifest in ~/.config/mozilla/ is not read: the add-on cannot reach the host', async () => {
  const right = join(home, '.mozilla', 'native-messaging-hosts');
  const wrong = join(home, '.config', 'mozilla', 'native-messaging-hosts');
  mkdirSync(join(home, '.config', 'mozilla'), { recursive: true });
  renameSync(right, wrong);
  try {
    log.length = 0;
    assert.equal(await popupHostLine('profile-2'), 'not reachable');
    assert.ok(!log.some((l) => l.includes('serving native messaging')), 'no host was started');
  } finally {
    renameSync(wrong, right);
  }
});

test('the packaged .xpi installs and reaches the host the same way', async () => {
  const { xpi } = packageAll(join(dir, 'packages'));
  log.length = 0;
  assert.match(await popupHostLine('profile-3', xpi), /^native host \d+\.\d+\.\d+, card service /);
  assert.ok(log.some((l) => l.includes('purse-checkout@purse.invalid)')), 'started for the add-on id');
});
