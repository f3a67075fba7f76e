// Kept card answers in storage (lib/pending.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { FINAL_REFUSALS, PendingStore, deliveryCall, isFinalRefusal, makeRecord, retryDelayMs } from '../src/lib/pending.js';
import { pluginClient, retryAfter } from '../src/lib/plugin-api.js';

/** chrome.storage.local's contract: values go through structured clone (here JSON). */
function memoryStorage() {
  const m = new Map();
  return {
    get: async (k) => (m.has(k) ? JSON.parse(m.get(k)) : undefined),
    set: async (k, v) => { m.set(k, JSON.stringify(v)); },
  };
}

const BASE = { api: 'https://pay.example', pageOrigin: 'https://shop.example', paymentId: 'pay_1', clientSecret: 'pay_1_secret_x' };

test('an answer is kept until it is removed, one record per payment', async () => {
  const st = new PendingStore(memoryStorage());
  await st.put(makeRecord({ ...BASE, kind: 'recovery', cardId: '1000000000000001', kv: 1 }, 1));
  await st.put(makeRecord({ ...BASE, kind: 'answer', response: '0000222e9000' }, 2));
  await st.put(makeRecord({ ...BASE, paymentId: 'pay_2', clientSecret: 'pay_2_secret_y', kind: 'tick', response: 'aa9000' }, 3));
  const all = await st.all();
  assert.deepEqual(Object.keys(all).sort(), ['pay_1', 'pay_2']);
  assert.equal(all.pay_1.kind, 'answer', 'the answer replaced the recovery context');
  assert.equal(await st.attempted('pay_1'), 1);
  assert.equal(await st.attempted('pay_1'), 2);
  assert.equal(await st.remove('pay_1'), true);
  assert.equal(await st.remove('pay_1'), false);
  assert.deepEqual(Object.keys(await st.all()), ['pay_2']);
});

test('concurrent writes are not lost', async () => {
  const st = new PendingStore(memoryStorage());
  await Promise.all(Array.from({ length: 20 }, (_, i) => st.put(makeRecord({ ...BASE, paymentId: `pay_${i}`, kind: 'answer', response: '9000' }))));
  assert.equal(Object.keys(await st.all()).length, 20);
});

test('each record says how it is delivered again', () => {
  assert.deepEqual(deliveryCall(makeRecord({ ...BASE, kind: 'answer', response: 'r' })), ['answer', ['pay_1', 'pay_1_secret_x', 'r']]);
  assert.deepEqual(deliveryCall(makeRecord({ ...BASE, kind: 'tick', response: 'r' })), ['answer', ['pay_1', 'pay_1_secret_x', 'r']], 'a TICK answer is delivered without asking for the next unit');
  assert.deepEqual(deliveryCall(makeRecord({ ...BASE, kind: 'stop', response: 'r' })), ['stop', ['pay_1', 'pay_1_secret_x', 'r']]);
  assert.equal(deliveryCall(makeRecord({ ...BASE, kind: 'recovery', cardId: 'c', kv: 1 })), null);
});

test('incomplete records are refused', () => {
  assert.throws(() => makeRecord({ ...BASE, kind: 'answer' }), TypeError);
  assert.throws(() => makeRecord({ ...BASE, kind: 'recovery' }), TypeError);
  assert.throws(() => makeRecord({ ...BASE, kind: 'refund', response: 'x' }), RangeError);
  assert.throws(() => makeRecord({ ...BASE, api: '', kind: 'answer', response: 'x' }), TypeError);
  assert.throws(() => makeRecord({ ...BASE, kind: 'recovery', cardId: 'c', kv: 1, nt: 0 }), RangeError);
  assert.equal(makeRecord({ ...BASE, kind: 'recovery', cardId: 'c', kv: 1, nt: 7 }).nt, 7);
});

test('retries back off', () => {
  assert.equal(retryDelayMs(0), 1000);
  assert.equal(retryDelayMs(3), 8000);
  assert.equal(retryDelayMs(100), 60000);
});

/** A server answering every request with `status`, `contentType` and `body`. */
async function answering(status, contentType, body, headers = {}) {
  const s = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': contentType, ...headers });
    res.end(body);
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { url: `http://127.0.0.1:${s.address().port}`, close: () => new Promise((r) => s.close(r)) };
}

const html = (status, title) => [status, 'text/html; charset=utf-8', `<html><head><title>${status} ${title}</title></head><body><h1>${title}</h1></body></html>`];
const pluginJson = (status, code) => [status, 'application/json', JSON.stringify({ error: { code, message: code } })];

/** The error a delivery of a kept answer gets from a server answering so. */
async function deliveryError(t, [status, type, body], headers) {
  const s = await answering(status, type, body, headers);
  t.after(s.close);
  const c = pluginClient({ api: s.url, pageOrigin: 'https://shop.example', fetch });
  return c.answer('pay_1', 'pay_1_secret_x', '0000222e9000').then(() => null, (e) => e);
}

test('a kept answer survives every transport and proxy status: only the plugin\'s own final refusal drops it', async (t) => {
  const keep = [
    ['proxy 408', html(408, 'Request Timeout'), true],
    ['proxy 429', html(429, 'Too Many Requests'), true],
    ['proxy 403', html(403, 'Forbidden'), true],
    ['proxy 404', html(404, 'Not Found'), true],
    ['proxy 409 page', html(409, 'Conflict'), true],
    ['proxy 410 page', html(410, 'Gone'), true],
    ['proxy 502', html(502, 'Bad Gateway'), true],
    ['proxy 503', html(503, 'Service Unavailable'), true],
    ['proxy 504', html(504, 'Gateway Timeout'), true],
    ['JSON that is not the plugin\'s', [403, 'application/json', '{"message":"forbidden by policy"}'], true],
    ['a plugin code sent as text', [409, 'text/plain', JSON.stringify({ error: { code: 'nothing_in_flight' } })], true],
    ['plugin 503 storage_unavailable', pluginJson(503, 'storage_unavailable'), true],
    ['plugin 429', pluginJson(429, 'too_many_requests'), true],
    ['plugin 409 recovery_required', pluginJson(409, 'recovery_required'), false],
    ['plugin 403 origin_not_allowed', pluginJson(403, 'origin_not_allowed'), false],
    ['plugin 404 not_found', pluginJson(404, 'not_found'), false],
    ['plugin 401 invalid_client_secret', pluginJson(401, 'invalid_client_secret'), false],
    ['a final code at another status', pluginJson(403, 'nothing_in_flight'), false],
  ];
  for (const [what, answer, retryable] of keep) {
    const e = await deliveryError(t, answer);
    assert.ok(e, what);
    assert.equal(isFinalRefusal(e), false, `${what}: the kept answer must stay`);
    assert.equal(e.retryable, retryable, `${what}: retryable`);
  }
  for (const [code, status] of Object.entries(FINAL_REFUSALS)) {
    const e = await deliveryError(t, pluginJson(status, code));
    assert.equal(isFinalRefusal(e), true, `${status} ${code} is the plugin's final word`);
    assert.equal(e.retryable, false);
  }
  // No answer at all: nothing listens there.
  const gone = await answering(200, 'application/json', '{}');
  await gone.close();
  const e = await pluginClient({ api: gone.url, pageOrigin: 'https://shop.example', fetch }).answer('p', 's', '9000').catch((x) => x);
  assert.equal(e.code, 'network_unreachable');
  assert.equal(isFinalRefusal(e), false);
  assert.equal(e.retryable, true);
  assert.equal(isFinalRefusal({ status: 409, code: 'nothing_in_flight' }), false, 'not a parsed plugin error');
  assert.equal(isFinalRefusal(null), false);
});

test('Retry-After of a 429 or 503 is honoured, at most a minute', async (t) => {
  const e = await deliveryError(t, html(429, 'Too Many Requests'), { 'retry-after': '3' });
  assert.equal(e.retryAfterMs, 3000);
  const e2 = await deliveryError(t, pluginJson(503, 'storage_unavailable'), { 'retry-after': '86400' });
  assert.equal(e2.retryAfterMs, 60000);
  assert.equal(retryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), null);
});
