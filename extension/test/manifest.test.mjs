// The per-browser builds: the Chromium manifest against its schema
// (manifests/chromium.schema.json) and its fixed development id; the Firefox manifest's
// own fields (addons-linter checks the rest: `npm run lint`); every file a manifest
// names exists in the build; both builds are the same source tree.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { ROOT, build, manifestFor, merge } from '../tools/build.mjs';
import { chromiumId, extensionId, firefoxId } from '../tools/extension-id.mjs';

const out = mkdtempSync(join(tmpdir(), 'purse-ext-build-'));
test.after(() => rmSync(out, { recursive: true, force: true }));
const dirs = { chromium: build('chromium', out), firefox: build('firefox', out) };
const read = (b) => JSON.parse(readFileSync(join(dirs[b], 'manifest.json'), 'utf8'));

function files(d) {
  const acc = [];
  const walk = (x) => readdirSync(x, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(join(x, e.name)) : acc.push(relative(d, join(x, e.name)))));
  walk(d);
  return acc.sort();
}

function named(m) {
  return [
    m.background.service_worker, ...(m.background.scripts ?? []),
    ...m.content_scripts.flatMap((c) => c.js), m.action.default_popup,
    ...Object.values(m.icons), ...Object.values(m.action.default_icon ?? {}),
  ].filter(Boolean);
}

test('the Chromium manifest passes its schema', () => {
  const schema = JSON.parse(readFileSync(join(ROOT, 'manifests', 'chromium.schema.json'), 'utf8'));
  const validate = new Ajv2020({ strict: false }).compile(schema);
  const m = read('chromium');
  assert.ok(validate(m), JSON.stringify(validate.errors));
  // And the schema catches what Chromium would not load as ours.
  assert.ok(!validate({ ...m, manifest_version: 2 }));
  assert.ok(!validate({ ...m, background: { scripts: ['background/main.js'] } }));
  assert.ok(!validate({ ...m, permissions: ['storage'] }));
  const { key, ...noKey } = m;
  assert.ok(key && !validate(noKey));
});

test('the Chromium build has the fixed development id', () => {
  assert.equal(chromiumId(), 'cbppddcfeidagakjkenjdiachfllkgom');
  assert.equal(extensionId(read('chromium').key), chromiumId());
});

test('the Firefox manifest: background scripts and a gecko id, no key', () => {
  const m = read('firefox');
  assert.equal(m.manifest_version, 3);
  assert.deepEqual(m.background, { scripts: ['background/main.js'], type: 'module' });
  assert.equal(m.browser_specific_settings.gecko.id, firefoxId());
  assert.match(firefoxId(), /^[a-z0-9.-]+@[a-z0-9.-]+$/);
  assert.equal(m.key, undefined);
});

test('both builds: one version, same permissions, every named file present, same sources', () => {
  const c = read('chromium');
  const f = read('firefox');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(c.version, pkg.version);
  assert.equal(f.version, pkg.version);
  assert.deepEqual(c.permissions, f.permissions);
  assert.equal(c.host_permissions, undefined, 'the payment service answers the extension by CORS: no host permission');
  assert.equal(f.host_permissions, undefined);
  assert.deepEqual(c.content_scripts, f.content_scripts);
  for (const b of ['chromium', 'firefox']) for (const n of named(read(b))) assert.ok(existsSync(join(dirs[b], n)), `${b}: ${n}`);
  const src = files(join(ROOT, 'src'));
  assert.deepEqual(files(dirs.chromium).filter((x) => x !== 'manifest.json'), src);
  assert.deepEqual(files(dirs.firefox).filter((x) => x !== 'manifest.json'), src);
});

test('manifest layering: objects merge, arrays and values replace', () => {
  assert.deepEqual(merge({ a: { x: 1, y: [1] }, b: 1 }, { a: { y: [2] }, c: 3 }), { a: { x: 1, y: [2] }, b: 1, c: 3 });
  assert.throws(() => manifestFor('safari'), /unknown browser/);
});

test('no page can reach into the extension: no web-accessible resources, no external connections', () => {
  for (const b of ['chromium', 'firefox']) {
    const m = read(b);
    assert.equal(m.web_accessible_resources, undefined);
    assert.equal(m.externally_connectable, undefined);
  }
});
