// The build: assembles dist/chromium and dist/firefox from the one source tree (src/,
// copied as it is: no bundler) and the browser's manifest (manifests/common.json with
// manifests/<browser>.json laid over it). `node tools/build.mjs [browser...]`.

import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BROWSERS = ['chromium', 'firefox'];

/** `over` laid over `base`: objects merge key by key, anything else replaces. */
export function merge(base, over) {
  if (!isObject(base) || !isObject(over)) return over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
  return out;
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The manifest of one browser. */
export function manifestFor(browser) {
  if (!BROWSERS.includes(browser)) throw new Error(`unknown browser ${browser}: one of ${BROWSERS.join(', ')}`);
  const common = readJson(join(ROOT, 'manifests', 'common.json'));
  const own = readJson(join(ROOT, 'manifests', `${browser}.json`));
  const m = merge(common, own);
  m.version = readJson(join(ROOT, 'package.json')).version; // one version, from package.json
  return m;
}

/** Writes dist/<browser>/ and returns its path. */
export function build(browser, outRoot = join(ROOT, 'dist')) {
  const out = join(outRoot, browser);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  cpSync(join(ROOT, 'src'), out, { recursive: true });
  writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifestFor(browser), null, 2)}\n`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const which = process.argv.slice(2);
  for (const b of which.length ? which : BROWSERS) console.log(`built ${build(b)}`);
}
