// Kept card answers delivered again, against a real HTTP server standing in for the
// shop plugin's shopper API.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { deliverPending } from '../src/background/deliveries.js';
import { PendingStore, makeRecord } from '../src/lib/pending.js';

function memoryStorage() {
  const m = new Map();
  return { get: async (k) => (m.has(k) ? JSON.parse(m.get(k)) : undefined), set: async (k, v) => { m.set(k, JSON.stringify(v)); } };
}

async function plugin(statusFor) {
  const seen = [];
  const s = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    seen.push({ url: req.url, body: JSON.parse(body), page: req.headers['purse-page-origin'] });
    const [status, json] = statusFor(req.url);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(json));
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { api: `http://127.0.0.1:${s.address().port}`, seen, close: () => new Promise((r) => s.close(r)) };
}

const rec = (api, paymentId, kind, response) => makeRecord({ kind, api, pageOrigin: 'https://shop.example', paymentId, clientSecret: `${paymentId}_secret_x`, response });
const noHost = () => { throw new Error('no host needed for answers without a held id'); };

test('kept answers go out again: taken ones are forgotten, refused ones dropped, unreachable ones kept', async (t) => {
  const p = await plugin((url) => {
    if (url.includes('pay_gone')) return [410, { error: { code: 'payment_expired', message: 'expired' } }];
    if (url.includes('pay_busy')) return [503, { error: { code: 'storage_unavailable', message: 'later' } }];
    return [200, { id: 'x', status: 'succeeded' }];
  });
  t.after(p.close);
  const pending = new PendingStore(memoryStorage());
  await pending.put(rec(p.api, 'pay_ok', 'answer', '0000222e9000'));
  await pending.put(rec(p.api, 'pay_tick', 'tick', 'aabb9000'));
  await pending.put(rec(p.api, 'pay_gone', 'answer', 'cc9000'));
  await pending.put(rec(p.api, 'pay_busy', 'stop', 'dd9000'));
  await pending.put(rec(p.api, 'pay_mine', 'answer', 'ee9000'));
  const out = await deliverPending({ pending, fetch, makeHost: noHost, busyWith: 'pay_mine' });
  assert.deepEqual(out, { delivered: 2, recovered: 0, left: 1 });
  assert.deepEqual(Object.keys(await pending.all()).sort(), ['pay_busy', 'pay_mine']);
  assert.equal((await pending.get('pay_busy')).attempts, 1);
  const byUrl = Object.fromEntries(p.seen.map((r) => [r.url, r.body]));
  assert.deepEqual(byUrl['/v1/checkout/payments/pay_ok/answer'], { client_secret: 'pay_ok_secret_x', response: '0000222e9000' });
  assert.deepEqual(byUrl['/v1/checkout/payments/pay_tick/tick'], { client_secret: 'pay_tick_secret_x', answer: { response: 'aabb9000' } });
  assert.deepEqual(byUrl['/v1/checkout/payments/pay_busy/stop'], { client_secret: 'pay_busy_secret_x', answer: { response: 'dd9000' } });
  assert.ok(!p.seen.some((r) => r.url.includes('pay_mine')), 'the running payment delivers its own');
  assert.ok(p.seen.every((r) => r.page === 'https://shop.example'));
});

test('an answer the service could not verify becomes a recovery', async (t) => {
  const p = await plugin(() => [409, { error: { code: 'recovery_required', message: 'run recovery' } }]);
  t.after(p.close);
  const pending = new PendingStore(memoryStorage());
  await pending.put({ ...rec(p.api, 'pay_r', 'answer', 'ff9000'), cardId: '1000000000000001', kv: 1 });
  const out = await deliverPending({ pending, fetch, makeHost: noHost });
  assert.equal(out.left, 1);
  const kept = await pending.get('pay_r');
  assert.equal(kept.kind, 'recovery');
  assert.equal(kept.cardId, '1000000000000001');
});
