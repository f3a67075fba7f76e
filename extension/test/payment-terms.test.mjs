// The confirmed terms and the INITIALIZE that must carry them (lib/payment-terms.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { initializeFor, sameTerms, termsOf } from '../src/lib/payment-terms.js';

const INIT = (mode, u, max, kv = 1) => `8050${mode.toString(16).padStart(2, '0')}${kv.toString(16).padStart(2, '0')}1e5a00000000000001${'11'.repeat(16)}${u.toString(16).padStart(8, '0')}${max.toString(16).padStart(4, '0')}00`;
const single = { id: 'pay_1', status: 'created', mode: 'single', amount: 1250, currency: 'EUR', time_cycle: null, description: 'Coffee beans', initialize: [{ kv: 1, apdu: INIT(1, 1250, 1) }] };
const cycle = { id: 'pay_2', status: 'created', mode: 'time_cycle', amount: 200, currency: 'EUR', time_cycle: { unit_amount: 200, period_seconds: 60, max_units: 4 }, description: 'Parking', initialize: [{ kv: 1, apdu: INIT(2, 200, 4) }, { kv: 2, apdu: INIT(2, 200, 4, 2) }] };

test('terms come from the service payment object', () => {
  assert.deepEqual(termsOf(single), { id: 'pay_1', mode: 'single', currency: 'EUR', description: 'Coffee beans', unitAmount: 1250, maxUnits: 1, periodSeconds: null, cap: 1250 });
  assert.deepEqual(termsOf(cycle), { id: 'pay_2', mode: 'time_cycle', currency: 'EUR', description: 'Parking', unitAmount: 200, maxUnits: 4, periodSeconds: 60, cap: 800 });
});

test('terms that cannot be shown truthfully are refused', () => {
  for (const p of [
    null, { ...single, id: '' }, { ...single, amount: 12.5 }, { ...single, amount: 0 }, { ...single, amount: '1250' }, { ...single, currency: 'euro' },
    { ...single, mode: 'subscription' }, { ...cycle, time_cycle: null }, { ...cycle, time_cycle: { unit_amount: 200, period_seconds: 0, max_units: 4 } },
    { ...cycle, time_cycle: { unit_amount: 200, period_seconds: 60, max_units: 70000 } },
  ]) assert.ok(termsOf(p).error, JSON.stringify(p));
});

test("the INITIALIZE for the card's key version must carry the confirmed terms", () => {
  const t = termsOf(cycle);
  assert.equal(initializeFor(cycle, 2, t).apdu, INIT(2, 200, 4, 2));
  assert.deepEqual(initializeFor(cycle, 3, t), { error: 'card_not_accepted' });
  const raised = { ...cycle, initialize: [{ kv: 1, apdu: INIT(2, 201, 4) }] };
  assert.deepEqual(initializeFor(raised, 1, t), { error: 'amount_mismatch' });
  const longer = { ...cycle, initialize: [{ kv: 1, apdu: INIT(2, 200, 5) }] };
  assert.deepEqual(initializeFor(longer, 1, t), { error: 'amount_mismatch' });
  const single1 = { ...cycle, initialize: [{ kv: 1, apdu: INIT(1, 200, 1) }] };
  assert.deepEqual(initializeFor(single1, 1, t), { error: 'amount_mismatch' });
  const wrongKv = { ...cycle, initialize: [{ kv: 1, apdu: INIT(2, 200, 4, 2) }] };
  assert.deepEqual(initializeFor(wrongKv, 1, t), { error: 'initialize_invalid' });
  const notInit = { ...cycle, initialize: [{ kv: 1, apdu: '00a4040007f045505552534500' }] };
  assert.deepEqual(initializeFor(notInit, 1, t), { error: 'initialize_invalid' });
  assert.ok(sameTerms({ mode: 1, unitAmount: 1250, maxUnits: 1 }, termsOf(single)));
});
