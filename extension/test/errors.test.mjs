// Every error code the native host and the shop plugin can send has its own sentence
// and action here: read from their sources, so a new code there fails this test until
// the extension can explain it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { describe, isKnown, knownCodes, SOURCES } from '../src/lib/errors.js';
import { readRepoJson, readRepoText, rustSources } from './support/repo.mjs';

function hostCodes() {
  const rs = readRepoText('native-host', 'src', 'catalogue.rs');
  if (!rs) return null;
  const codes = new Set([...rs.matchAll(/ErrorCode::\w+ => "([a-z_]+)"/g)].map((m) => m[1]));
  const schema = readRepoJson('schema', 'native-messaging.schema.json');
  const walk = (v) => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v && typeof v === 'object') {
      if (Array.isArray(v.enum) && v.enum.includes('no_card')) v.enum.forEach((c) => codes.add(c));
      Object.values(v).forEach(walk);
    }
  };
  walk(schema);
  return [...codes];
}

function pluginCodes() {
  const srcs = rustSources('shop-plugin', 'src');
  if (srcs.length === 0) return null;
  const codes = new Set();
  for (const s of srcs) {
    for (const m of s.matchAll(/ApiError::(?:new|bad_request|conflict)\(\s*(?:\d+,\s*)?"([a-z_]+)"/g)) codes.add(m[1]);
    for (const m of s.matchAll(/code: "([a-z_]+)"\.into\(\)/g)) codes.add(m[1]);
  }
  return [...codes];
}

const host = hostCodes();
const plugin = pluginCodes();

test('every native host error code has a sentence and an action', { skip: host ? false : 'native-host/src/catalogue.rs missing' }, () => {
  assert.ok(host.length >= 12, `found ${host.length} codes`);
  const missing = host.filter((c) => !isKnown('host', c));
  assert.deepEqual(missing, [], `host codes without a sentence: ${missing}`);
});

test('every shop plugin error code has a sentence and an action', { skip: plugin ? false : 'shop-plugin sources missing' }, () => {
  assert.ok(plugin.length >= 10, `found ${plugin.length} codes`);
  const missing = plugin.filter((c) => !isKnown('plugin', c));
  assert.deepEqual(missing, [], `plugin codes without a sentence: ${missing}`);
});

test('the issue names these situations: each has its sentence', () => {
  assert.match(describe('host', 'no_card').action, /insert your purse card/i);
  assert.match(describe('host', 'no_pcsc_service').message, /card reader service.*not running/i);
  assert.match(describe('extension', 'host_not_installed').action, /native-host install/);
  assert.match(describe('extension', 'extension_outdated').action, /update the extension/i);
  assert.match(describe('extension', 'host_outdated').action, /update the purse native host/i);
});

test('every entry is two full sentences; unknown codes still get one', () => {
  for (const s of SOURCES.filter((x) => x !== 'page')) {
    for (const c of knownCodes(s)) {
      const d = describe(s, c);
      assert.match(d.message, /[.!]$/, `${s}/${c} message`);
      assert.match(d.action, /[.!]$/, `${s}/${c} action`);
      assert.match(c, /^[a-z][a-z0-9_]{0,63}$/);
    }
  }
  const u = describe('plugin', 'brand_new_code', 'the service says why');
  assert.equal(u.code, 'brand_new_code');
  assert.match(u.message, /the service says why/);
  assert.ok(u.action.length > 10);
  assert.equal(describe('host', 'busy').source, 'host');
});
