// The Chromium extension id of a manifest `key` (base64 DER public key): the first 32
// hex digits of its SHA-256, written with the letters a-p. `node tools/extension-id.mjs`
// prints the development id of manifests/chromium.json.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './build.mjs';

export function extensionId(keyBase64) {
  const hex = createHash('sha256').update(Buffer.from(keyBase64, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}

/** The development id of the Chromium build (from manifests/chromium.json's key). */
export function chromiumId() {
  return extensionId(JSON.parse(readFileSync(join(ROOT, 'manifests', 'chromium.json'), 'utf8')).key);
}

/** The Firefox add-on id (gecko id). */
export function firefoxId() {
  return JSON.parse(readFileSync(join(ROOT, 'manifests', 'firefox.json'), 'utf8')).browser_specific_settings.gecko.id;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(chromiumId());
