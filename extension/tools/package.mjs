// The store packages (`npm run package`): dist/packages/purse-checkout-chromium-<version>.zip
// for the Chrome Web Store and dist/packages/purse-checkout-firefox-<version>.xpi for
// addons.mozilla.org, both built by web-ext (npm, pinned; offline) from fresh builds,
// after `web-ext lint` has found no error in the Firefox build (a lint error fails the
// packaging). The store zip leaves out the manifest's development `key`: the Chrome Web
// Store refuses it and gives the extension its own id.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, ROOT } from './build.mjs';

const WEB_EXT = join(ROOT, 'node_modules', '.bin', 'web-ext');

function webExt(args) {
  const r = spawnSync(WEB_EXT, [...args, '--no-config-discovery'], { encoding: 'utf8' });
  if (r.error) throw new Error(`web-ext: ${r.error.message} (npm ci in extension/)`);
  return r;
}

/** Lints a build with web-ext (addons-linter); returns its summary, throws on errors. */
export function lint(dir) {
  const r = webExt(['lint', '--source-dir', dir, '--output', 'json']);
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`web-ext lint printed no report (${r.status}): ${r.stderr}`);
  }
  for (const m of [...report.errors, ...report.warnings]) console.error(`${m._type}: ${m.code} ${m.file ?? ''}: ${m.message}`);
  if (report.summary.errors > 0) throw new Error(`web-ext lint: ${report.summary.errors} error(s) in ${dir}`);
  return report.summary;
}

function webExtBuild(dir, outDir, filename) {
  const r = webExt(['build', '--source-dir', dir, '--artifacts-dir', outDir, '--filename', filename, '--overwrite-dest']);
  if (r.status !== 0) throw new Error(`web-ext build of ${dir} failed: ${r.stderr || r.stdout}`);
  return join(outDir, filename);
}

/** Builds both packages into `outDir`; returns their paths. */
export function packageAll(outDir = join(ROOT, 'dist', 'packages')) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

  const firefox = build('firefox');
  const summary = lint(firefox);
  console.log(`web-ext lint dist/firefox: ${summary.errors} errors, ${summary.warnings} warnings, ${summary.notices} notices`);
  const xpi = webExtBuild(firefox, outDir, `purse-checkout-firefox-${version}.xpi`);

  const chromium = build('chromium', join(outDir, 'staging'));
  const manifest = JSON.parse(readFileSync(join(chromium, 'manifest.json'), 'utf8'));
  delete manifest.key;
  writeFileSync(join(chromium, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const zip = webExtBuild(chromium, outDir, `purse-checkout-chromium-${version}.zip`);
  rmSync(join(outDir, 'staging'), { recursive: true, force: true });
  return { zip, xpi };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { zip, xpi } = packageAll();
  console.log(`packaged ${zip}`);
  console.log(`packaged ${xpi}`);
}
