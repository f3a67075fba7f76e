// Files of the rest of the repository the extension's tests check against (schemas,
// the shop's checkout.js, the error catalogues of the host and the plugin). A file that
// is not there yet makes its test skip with the reason.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT as EXT_ROOT } from '../../tools/build.mjs';

export const REPO = join(EXT_ROOT, '..');

export function repoPath(...p) {
  return join(REPO, ...p);
}

export function readRepoJson(...p) {
  const f = repoPath(...p);
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null;
}

export function readRepoText(...p) {
  const f = repoPath(...p);
  return existsSync(f) ? readFileSync(f, 'utf8') : null;
}

/** checkout.js (the page's side of the protocol), loaded as CommonJS; null if absent. */
export function checkoutJs() {
  const f = repoPath('shop-plugin', 'assets', 'checkout.js');
  if (!existsSync(f)) return null;
  const api = createRequire(import.meta.url)(f);
  return api && api.protocol ? api : null;
}

/** Every .rs file under a folder of the repository. */
export function rustSources(...p) {
  const out = [];
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      const f = join(d, n);
      if (statSync(f).isDirectory()) walk(f);
      else if (n.endsWith('.rs')) out.push(readFileSync(f, 'utf8'));
    }
  };
  walk(repoPath(...p));
  return out;
}
