// Kept card answers delivered again, against a real HTTP server standing in for the
// shop plugin's shopper API.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { deliverHeld, deliverPending } from '../src/background/deliveries.js';
import { MAX_RECOVERY_EXCHANGES, recoveryRefusal, runRecovery } from '../src/background/recovery.js';
import { proofCommand } from '../src/lib/apdu.js';
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
  assert.deepEqual(byUrl['/v1/checkout/payments/pay_tick/answer'], { client_secret: 'pay_tick_secret_x', response: 'aabb9000' }, 'a kept TICK answer asks for no next unit');
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

/** A native host that holds `responses` and records the requests it gets. */
function heldHost(responses) {
  const calls = [];
  return {
    calls,
    acked: () => calls.filter((c) => c.type === 'ack').map((c) => c.held_id),
    call: async (req) => {
      calls.push(req);
      if (req.type === 'held') return { type: 'held', responses };
      if (req.type === 'ack') return { type: 'acked', held_id: req.held_id, removed: true };
      throw new Error(`unexpected ${req.type}`);
    },
    close: () => {},
  };
}

const held = (id, nt, k, response, command = k === 1 ? 'debit' : 'tick') => ({
  held_id: id, session: 's1', card_id: '1000000000000001', nt, command, k, command_apdu: '80540000', response, at: 1700000000 + k,
});

test("the host's held answers reach their payment (matched by card and NT), then are acknowledged", async (t) => {
  const statusOf = { pay_kept: 200, pay_gone: 409, pay_proxy: 502 };
  const p = await plugin((url) => {
    const id = url.split('/')[4];
    if (statusOf[id] === 409) return [409, { error: { code: 'nothing_in_flight', message: 'decided' } }];
    if (statusOf[id] === 502) return [502, { error: 'bad gateway' }];
    return [200, { id, status: 'succeeded' }];
  });
  t.after(p.close);
  const pending = new PendingStore(memoryStorage());
  const kept = (paymentId, nt) => ({ ...makeRecord({ kind: 'recovery', api: p.api, pageOrigin: 'https://shop.example', paymentId, clientSecret: `${paymentId}_secret_x`, cardId: '1000000000000001', kv: 1, nt }) });
  await pending.put(kept('pay_kept', 5)); // the extension died between the DEBIT and storing its answer
  await pending.put(kept('pay_gone', 6));
  await pending.put(kept('pay_proxy', 7));
  await pending.put(kept('pay_busy', 8));
  const host = heldHost([held('h7', 7, 1, 'cc9000'), held('h5', 5, 1, 'aa9000'), held('h6', 6, 1, 'bb9000'), held('h8', 8, 1, 'dd9000'), held('hx', 99, 1, 'ee9000')]);
  const out = await deliverHeld({ pending, fetch, host, busyWith: 'pay_busy' });
  assert.deepEqual(out, { delivered: 1, refused: 1, left: 1 });
  assert.deepEqual(p.seen.map((r) => [r.url, r.body.response]), [
    ['/v1/checkout/payments/pay_kept/answer', 'aa9000'],
    ['/v1/checkout/payments/pay_gone/answer', 'bb9000'],
    ['/v1/checkout/payments/pay_proxy/answer', 'cc9000'],
  ], 'oldest NT first; the running payment and an unknown NT are left alone');
  assert.deepEqual(host.acked(), ['h5', 'h6'], 'acknowledged once taken or finally refused; a proxy error keeps it held');
  assert.deepEqual(Object.keys(await pending.all()).sort(), ['pay_busy', 'pay_gone', 'pay_proxy'], 'the paid payment is settled; the others go their own way');
});

test('a recovery relays only the status INITIALIZE and the proof of its own NT, and is bounded', async () => {
  const init00 = '805000011e5a00000000000001' + '00'.repeat(16) + '00000000' + '0000' + '00';
  assert.equal(recoveryRefusal(init00, 0, 5, 1), null);
  assert.match(recoveryRefusal('805001011e5a00000000000001' + '00'.repeat(16) + '000004e2000100', 0, 5, 1), /status-only/);
  assert.match(recoveryRefusal(proofCommand(5), 0, 5, 1), /status-only/, 'the INITIALIZE comes first');
  assert.equal(recoveryRefusal(proofCommand(5), 1, 5, 1), null);
  assert.match(recoveryRefusal(proofCommand(4), 1, 5, 1), /NT 4 is not this payment's/);
  assert.match(recoveryRefusal('00a4040007f045505552534500', 1, 5, 1), /only reads the record/);
  assert.match(recoveryRefusal('805400001000000001000000010102030405060708', 1, 5, 1), /only reads the record/, 'never a DEBIT');

  // A shop that asks for record after record: only its own reaches the card, and the run ends.
  const relayed = [];
  const answered = [];
  const host = {
    call: async (req) => {
      if (req.type === 'open_session') { relayed.push(['open', req.recovery]); return { session: 'r1' }; }
      if (req.type === 'apdu') { relayed.push(req.apdu); return { response: '9000' }; }
      return {};
    },
  };
  let n = 0;
  const greedy = {
    startRecovery: async () => ({ id: 'rec_1', command: init00 }),
    recoveryAnswer: async (id, response) => {
      answered.push(response);
      n++;
      return { id, command: proofCommand(n % 3 === 0 ? 5 : 100 - n), done: false };
    },
  };
  const r = await runRecovery(host, greedy, { cardId: '1000000000000001', kv: 1, nt: 5 });
  assert.equal(r.done, false, 'cut at the bound');
  assert.equal(answered.length, MAX_RECOVERY_EXCHANGES);
  assert.deepEqual(relayed[0], ['open', { nt: 5 }], 'the session names the NT the recovery is about');
  assert.deepEqual(relayed.slice(1), [init00, proofCommand(5)], 'nothing but the INITIALIZE and its own record reached the card');
  assert.ok(answered.every((a, i) => a === null || [0, 3].includes(i)), 'refused commands are answered "no answer"');
  await assert.rejects(runRecovery(host, greedy, { cardId: '1000000000000001', kv: 1, nt: null }), (e) => /no NT/.test(e.info.detail));
});
