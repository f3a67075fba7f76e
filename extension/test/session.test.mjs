// The payment's state machine (lib/session.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { FINAL, STATES, isFinal, next, stageOf, stopEvent } from '../src/lib/session.js';
import { STAGES } from '../src/lib/page-protocol.js';

test('a single purchase: confirm, pay, paid', () => {
  let s = 'loading';
  for (const [e, want] of [['card', 'confirming'], ['pay', 'processing'], ['paid', 'succeeded']]) {
    s = next(s, e);
    assert.equal(s, want);
  }
});

test('Pay counts only while confirming; nothing moves after the end', () => {
  for (const s of STATES) if (s !== 'confirming') assert.notEqual(next(s, 'pay'), 'processing', s);
  for (const f of FINAL) {
    assert.ok(isFinal(f));
    for (const e of ['card', 'pay', 'paid', 'error', 'cancel', 'stop', 'lost', 'running']) assert.equal(next(f, e), null, `${f} + ${e}`);
  }
});

test('a cancel is possible only before Pay; after it, a stop or nothing', () => {
  assert.equal(stopEvent('confirming'), 'cancel');
  assert.equal(stopEvent('waiting_for_card'), 'cancel');
  assert.equal(stopEvent('running'), 'stop');
  assert.equal(stopEvent('processing'), null, 'a debit under way finishes');
  assert.equal(stopEvent('recovering'), null);
  assert.equal(next('processing', 'cancel'), null);
});

test('time-cycle: units, stop, then paid', () => {
  let s = next(next(next('loading', 'card'), 'pay'), 'running');
  assert.equal(s, 'running');
  s = next(s, 'unit');
  s = next(s, 'stop');
  assert.equal(s, 'stopping');
  assert.equal(next(s, 'unit'), 'stopping');
  assert.equal(next(s, 'paid'), 'succeeded');
});

test('a lost answer leads to recovery, which ends paid or failed', () => {
  for (const s of ['processing', 'running', 'stopping', 'delivering']) assert.equal(next(s, 'lost'), 'recovering', s);
  assert.equal(next('loading', 'lost'), 'recovering', 'a retried payment whose answer was lost');
  assert.equal(next('recovering', 'paid'), 'succeeded');
  assert.equal(next('recovering', 'error'), 'failed');
  assert.equal(next('recovering', 'cancel'), null, 'a recovery is not cancelled');
});

test('the stages told to the page are the protocol stages', () => {
  for (const s of STATES) {
    const st = stageOf(s);
    if (st !== null) assert.ok(STAGES.includes(st), s);
  }
  assert.equal(stageOf('delivering'), 'processing');
  assert.equal(stageOf('succeeded'), null);
});
