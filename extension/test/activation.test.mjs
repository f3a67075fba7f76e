// The Pay button's activation delay (lib/activation.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { ActivationGate, PAY_DELAY_MS } from '../src/lib/activation.js';

test('Pay is live only a while after the window is shown, and again after it comes back', () => {
  let t = 1000;
  const gate = new ActivationGate(() => t);
  assert.ok(PAY_DELAY_MS >= 500, 'long enough for a provoked click to miss');
  assert.equal(gate.ready(), false, 'not the instant the window appears');
  assert.equal(gate.msLeft(), PAY_DELAY_MS);
  t += PAY_DELAY_MS - 1;
  assert.equal(gate.ready(), false);
  t += 1;
  assert.equal(gate.ready(), true);
  t += 5000;
  gate.rearm(); // focus came back
  assert.equal(gate.ready(), false, 'refocused: disabled again');
  assert.equal(gate.msLeft(), PAY_DELAY_MS);
  t += PAY_DELAY_MS;
  assert.equal(gate.ready(), true);
});
