// The README's install commands name the extension ids the builds really have: a Firefox
// user who follows it must get the id that `browser_specific_settings.gecko.id` fixes,
// or Firefox answers "no such native application".
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../tools/build.mjs';
import { firefoxId } from '../tools/extension-id.mjs';

const readme = readFileSync(join(ROOT, '..', 'README.md'), 'utf8');

test('every --firefox-id in the README is the manifest gecko id', () => {
  const ids = [...readme.matchAll(/--firefox-id\s+([^\s`'",)]+)/g)].map((m) => m[1]);
  assert.ok(ids.length > 0, 'the README shows how to install for Firefox');
  for (const id of ids) assert.equal(id, firefoxId());
});
