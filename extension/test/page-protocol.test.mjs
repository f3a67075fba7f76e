// The page protocol against its contract: schema/checkout-protocol.schema.json, its
// examples, and the page's side (shop-plugin/assets/checkout.js's validateMessage).
import test from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { isForExtension, parsePageMessage, reply, STAGES } from '../src/lib/page-protocol.js';
import { checkoutJs, readRepoJson } from './support/repo.mjs';

const schema = readRepoJson('schema', 'checkout-protocol.schema.json');
const examples = readRepoJson('schema', 'checkout-protocol.examples.json');
const checkout = checkoutJs();
const validate = schema ? new Ajv2020({ strict: false }).compile(schema) : null;

const EXT = { name: 'Purse checkout', version: '0.1.0' };
const PAYMENT = { id: 'pay_3f2a9c01d4e5b6a7c8d9e0f1', object: 'payment', status: 'succeeded', mode: 'single', amount: 1250, currency: 'EUR', charged: { units: 1, total: 1250 }, balance_after: 8750, time_cycle: null, description: 'x', pending_command: null };

function everyReply() {
  return [
    reply.ack('pc_1', EXT),
    ...STAGES.map((s) => reply.progress('pc_1', s)),
    reply.progress('pc_1', 'running', { ...PAYMENT, status: 'running', charged: { units: 2, total: 100 }, next_due_at: 1795000120 }),
    reply.success('pc_1', PAYMENT),
    reply.failure('pc_1', { code: 'insufficient_funds', message: 'Not enough money on the card.', source: 'plugin' }),
    reply.failure('pc_1', { code: 'version_unsupported', message: 'Update.', source: 'extension', versions: [1] }),
    reply.failure('pc_1', { code: 'card_declined', message: 'Declined.', source: 'plugin' }, { ...PAYMENT, status: 'failed' }),
  ];
}

test('the valid page messages of the examples are accepted', { skip: examples ? false : 'schema/checkout-protocol.examples.json is missing' }, () => {
  const pages = examples.valid.filter((m) => m.from === 'page');
  assert.ok(pages.length >= 3);
  for (const m of pages) {
    const r = parsePageMessage(m);
    assert.ok(r.ok, `${JSON.stringify(m)}: ${r.message}`);
    assert.equal(r.msg.id, m.id);
    if (m.type === 'request') {
      assert.equal(r.msg.payment.id, m.payment.id);
      assert.equal(r.msg.payment.clientSecret, m.payment.client_secret);
    }
  }
});

test('the invalid page messages of the examples are refused', { skip: examples ? false : 'examples missing' }, () => {
  for (const { why, message } of examples.invalid) {
    if (isForExtension(message)) assert.equal(parsePageMessage(message).ok, false, why);
  }
});

test('every reply the extension builds passes the schema and checkout.js', { skip: schema && checkout ? false : 'schema or checkout.js missing' }, () => {
  for (const m of everyReply()) {
    assert.ok(validate(m), `${JSON.stringify(m)}: ${JSON.stringify(validate.errors)}`);
    assert.equal(checkout.protocol.validateMessage(m), null, JSON.stringify(m));
  }
});

test('what checkout.js sends is what the extension takes', { skip: checkout ? false : 'checkout.js missing' }, () => {
  const p = checkout.protocol;
  const req = p.requestMessage('pc_abc', { id: 'pay_ab12', client_secret: 'pay_ab12_secret_Zm9v-_x', api_base: 'http://127.0.0.1:8443' });
  const r = parsePageMessage(req);
  assert.ok(r.ok, r.message);
  assert.deepEqual(r.msg.payment, { api: 'http://127.0.0.1:8443', id: 'pay_ab12', clientSecret: 'pay_ab12_secret_Zm9v-_x' });
  assert.deepEqual(parsePageMessage(p.pageMessage('hello', 'pc_h')).msg, { type: 'hello', id: 'pc_h' });
  assert.deepEqual(parsePageMessage(p.pageMessage('stop', 'pc_abc')).msg, { type: 'stop', id: 'pc_abc' });
});

test('a page names a payment, never its amount: extra fields change nothing', () => {
  const m = { ns: 'purse-checkout', v: 1, from: 'page', type: 'request', id: 'r1', amount: 1, currency: 'USD', payment: { id: 'pay_ab', client_secret: 'pay_ab_secret_x', api_base: 'https://pay.shop.example/', amount: 1 } };
  const r = parsePageMessage(m);
  assert.ok(r.ok);
  assert.deepEqual(r.msg, { type: 'request', id: 'r1', payment: { api: 'https://pay.shop.example', id: 'pay_ab', clientSecret: 'pay_ab_secret_x' } });
});

test('refusals carry a code and, when possible, the id to answer', () => {
  const base = { ns: 'purse-checkout', v: 1, from: 'page', type: 'request', id: 'r1' };
  const cases = [
    [{ ...base, v: 2 }, 'version_unsupported'],
    [{ ...base, type: 'success' }, 'invalid_request'],
    [base, 'invalid_request'],
    [{ ...base, payment: { id: 'pay_ab', client_secret: 'pay_cd_secret_x', api_base: 'https://a.example' } }, 'invalid_request'],
    [{ ...base, payment: { id: 'pay_ab', client_secret: 'pay_ab_secret_x', api_base: 'http://shop.example' } }, 'insecure_origin'],
    [{ ...base, payment: { id: 'pay_ab', client_secret: 'pay_ab_secret_x', api_base: 'https://user:pw@a.example' } }, 'insecure_origin'],
    [{ ...base, payment: { id: 'pay_ab', client_secret: 'pay_ab_secret_x', api_base: 'javascript:alert(1)' } }, 'insecure_origin'],
  ];
  for (const [m, code] of cases) {
    const r = parsePageMessage(m);
    assert.equal(r.ok, false, JSON.stringify(m));
    assert.equal(r.code, code, JSON.stringify(m));
    assert.equal(r.id, 'r1');
  }
  assert.deepEqual(parsePageMessage({ ...base, v: 2 }).versions, [1]);
  assert.equal(parsePageMessage({ ...base, id: 'a b' }).id, null);
});

test('the page learns the service view only, never the card id', () => {
  const s = reply.success('pc_1', { ...PAYMENT, card_id: '1000000000000001', pending_command: '8054' });
  assert.equal(s.payment.card_id, undefined);
  assert.equal(s.payment.pending_command, undefined);
  assert.throws(() => reply.progress('pc_1', 'thinking'), RangeError);
});
