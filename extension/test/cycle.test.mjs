// The pace of a time-cycle (background/cycle.js) against a shop that hands out TICKs at
// once: a real PaymentFlow on a virtual clock, a fake host that records when each TICK
// reached "the card", and a hostile payment service.
import test from 'node:test';
import assert from 'node:assert/strict';
import { PaymentFlow } from '../src/background/flow.js';
import { HostError } from '../src/background/host.js';
import { unitDueAt } from '../src/background/cycle.js';
import { PendingStore } from '../src/lib/pending.js';

const PERIOD = 60; // seconds, as confirmed
const MAX = 10;
const T0 = 1_700_000_000_000;

/** Virtual time: a sleep jumps the clock, unless a Stop is due first (then it stops there). */
function virtualClock() {
  const c = {
    t: T0,
    stopAt: null,
    onStop: () => {},
    now: () => c.t,
    sleep: async (ms, wake) => {
      const until = c.t + Math.max(0, ms);
      if (c.stopAt !== null && c.stopAt <= until) {
        c.t = Math.max(c.t, c.stopAt);
        c.stopAt = null;
        c.onStop();
        return;
      }
      c.t = until;
      void wake;
    },
  };
  return c;
}

const tick = (k) => `805600000a${k.toString(16).padStart(4, '0')}${'11'.repeat(8)}`;

/** A payment service that answers every unit with the next TICK at once. */
function rushingShop() {
  const s = { units: 1, asked: [], stopAnswer: null, nullAnswers: 0 };
  const step = () => (s.units >= MAX
    ? { id: 'pay_1', status: 'succeeded', units: s.units }
    : { id: 'pay_1', status: 'running', units: s.units, next_due_at: 0, command: tick(s.units + 1) });
  s.api = {
    tick: async (id, secret, response) => {
      s.asked.push(response === undefined ? 'tick' : 'tick+answer');
      if (response !== undefined) s.units++;
      return step();
    },
    stop: async (id, secret, response) => {
      if (response !== undefined) s.units++;
      s.stopAnswer = response ?? null;
      return { id: 'pay_1', status: 'succeeded', units: s.units };
    },
    answer: async (id, secret, response) => {
      if (response === null) s.nullAnswers++;
      return { id: 'pay_1', status: 'running', recovery_required: true };
    },
    payment: async () => ({ id: 'pay_1', status: 'succeeded', units: s.units }),
  };
  s.first = step;
  return s;
}

function cardHost(clock) {
  const h = { sent: [], tooEarlyOnce: false };
  h.call = async (req) => {
    if (req.type === 'apdu') {
      if (h.tooEarlyOnce) {
        h.tooEarlyOnce = false;
        throw new HostError('too_early', 'not yet', 'unit due in 0.4 s');
      }
      h.sent.push({ k: parseInt(req.apdu.slice(10, 14), 16), at: clock.now() });
      return { type: 'apdu', response: `0000222e${'00'.repeat(16)}9000`, held_id: `h${h.sent.length}` };
    }
    return { type: req.type === 'ack' ? 'acked' : 'session_closed' };
  };
  return h;
}

function memoryStorage() {
  const m = new Map();
  return { get: async (k) => (m.has(k) ? JSON.parse(m.get(k)) : undefined), set: async (k, v) => { m.set(k, JSON.stringify(v)); } };
}

/** A flow that has just charged unit 1 (the DEBIT answered at T0). */
function runningFlow(shop, clock) {
  const host = cardHost(clock);
  const f = new PaymentFlow({
    flowId: 'f1',
    requestId: 'r1',
    payment: { id: 'pay_1', clientSecret: 'pay_1_secret_x', api: 'https://pay.example' },
    pageOrigin: 'https://shop.example',
    toPage: () => {},
    makeHost: () => host,
    plugin: shop.api,
    pending: new PendingStore(memoryStorage()),
    ui: { push: () => {}, open: async () => {} },
    extensionInfo: { version: 't' },
    clock,
  });
  Object.assign(f, {
    host, session: 's1', state: 'processing', debitAt: T0, nt: 9,
    card: { cardId: '1000000000000001', kv: 1 },
    terms: { mode: 'time_cycle', unitAmount: 50, maxUnits: MAX, periodSeconds: PERIOD, currency: 'EUR' },
  });
  clock.onStop = () => f.stop('shopper_canceled');
  return { f, host };
}

test('TICKs handed out at once reach the card one confirmed period apart', async () => {
  const clock = virtualClock();
  const shop = rushingShop();
  const { f, host } = runningFlow(shop, clock);
  await f.cycle(shop.first());
  assert.equal(f.state, 'succeeded');
  assert.deepEqual(host.sent.map((s) => s.k), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  for (const { k, at } of host.sent) {
    assert.ok(at >= unitDueAt(T0, PERIOD, k), `unit ${k} reached the card ${unitDueAt(T0, PERIOD, k) - at} ms early`);
  }
  assert.equal(clock.now() - T0, (MAX - 1) * PERIOD * 1000, 'the cap took nine periods, not milliseconds');
});

test('a Stop before the next unit is due withholds the TICK the shop sent early', async () => {
  const clock = virtualClock();
  const shop = rushingShop();
  const { f, host } = runningFlow(shop, clock);
  let recovered = false;
  f.recover = async () => { recovered = true; return { id: 'pay_1', status: 'succeeded', units: 3 }; };
  clock.stopAt = T0 + 2.5 * PERIOD * 1000; // during period 3
  await f.cycle(shop.first());
  assert.deepEqual(host.sent.map((s) => s.k), [2, 3], 'unit 4 never went to the card');
  assert.equal(shop.nullAnswers, 1, 'the service heard that the TICK had no answer');
  assert.ok(recovered, 'recovery settles what the card did');
  assert.equal(f.facts.error, undefined);
  assert.equal(f.state, 'succeeded');
});

test('a TICK the host finds early (the card saw nothing) is sent again a second later', async () => {
  const clock = virtualClock();
  const shop = rushingShop();
  const { f, host } = runningFlow(shop, clock);
  host.tooEarlyOnce = true;
  await f.cycle(shop.first());
  assert.equal(host.sent[0].k, 2);
  assert.ok(host.sent[0].at >= unitDueAt(T0, PERIOD, 2) + 1000, 'sent again a second after the host said too early');
  assert.equal(f.state, 'succeeded');
});
