// Kept card answers in storage (lib/pending.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { PendingStore, deliveryCall, isFinalRefusal, makeRecord, retryDelayMs } from '../src/lib/pending.js';

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
  assert.deepEqual(deliveryCall(makeRecord({ ...BASE, kind: 'tick', response: 'r' })), ['tick', ['pay_1', 'pay_1_secret_x', 'r']]);
  assert.deepEqual(deliveryCall(makeRecord({ ...BASE, kind: 'stop', response: 'r' })), ['stop', ['pay_1', 'pay_1_secret_x', 'r']]);
  assert.equal(deliveryCall(makeRecord({ ...BASE, kind: 'recovery', cardId: 'c', kv: 1 })), null);
});

test('incomplete records are refused', () => {
  assert.throws(() => makeRecord({ ...BASE, kind: 'answer' }), TypeError);
  assert.throws(() => makeRecord({ ...BASE, kind: 'recovery' }), TypeError);
  assert.throws(() => makeRecord({ ...BASE, kind: 'refund', response: 'x' }), RangeError);
  assert.throws(() => makeRecord({ ...BASE, api: '', kind: 'answer', response: 'x' }), TypeError);
});

test('retries back off; a 4xx answer is final, a 5xx or no answer is not', () => {
  assert.equal(retryDelayMs(0), 1000);
  assert.equal(retryDelayMs(3), 8000);
  assert.equal(retryDelayMs(100), 60000);
  assert.ok(isFinalRefusal({ status: 410, code: 'payment_expired' }));
  assert.ok(!isFinalRefusal({ status: 409, code: 'recovery_required' }));
  assert.ok(!isFinalRefusal({ status: 503, code: 'storage_unavailable' }));
  assert.ok(!isFinalRefusal({ status: 0, code: 'network_unreachable' }));
});
