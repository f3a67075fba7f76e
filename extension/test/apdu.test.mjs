// The bytes are docs/protocol.md's worked example (card A, single purchase of 1250).
import test from 'node:test';
import assert from 'node:assert/strict';
import { normalHex, parseInitialize, parseInitializeAnswer, proofCommand, proofNt, statusWord, tickUnit } from '../src/lib/apdu.js';

const INITIALIZE = '805001011e5a00000000000001289e82699ce0768a4c122303f4d7fc72000004e2000100';
const DEBIT_ANSWER = '0000222ea3271e306b7025b7a15c7cfd226efa8e9000';
const INITIALIZE_ANSWER = '1000000000000001000000010000271003d280b3017bea0eafed241da4744e9e5d40a00b20f954dcb30f9000';

test('INITIALIZE fields', () => {
  assert.deepEqual(parseInitialize(INITIALIZE), { mode: 1, kv: 1, samId: '5a00000000000001', unitAmount: 1250, maxUnits: 1 });
  assert.equal(parseInitialize(INITIALIZE.slice(0, -2)).unitAmount, 1250, 'Le is optional');
  assert.equal(parseInitialize('80540000' + '10' + '00'.repeat(16)), null, 'a DEBIT is not an INITIALIZE');
  assert.equal(parseInitialize('zz'), null);
  assert.equal(parseInitialize(INITIALIZE + '00'), null, 'extra bytes');
});

test('GET TRANSACTION PROOF', () => {
  assert.equal(proofCommand(1), '805a0000040000000100');
  assert.throws(() => proofCommand(0), RangeError);
});

test('hex and status words', () => {
  assert.equal(normalHex('9000'), '9000');
  assert.equal(normalHex('ABcd'), 'abcd');
  assert.equal(normalHex('abc'), null);
  assert.equal(statusWord(DEBIT_ANSWER), '9000');
  assert.equal(statusWord('90'), null);
});

test('INITIALIZE answer: the card and the NT a recovery is about', () => {
  assert.deepEqual(parseInitializeAnswer(INITIALIZE_ANSWER), { cardId: '1000000000000001', nt: 1, balance: 10000 });
  assert.equal(parseInitializeAnswer('6a86'), null, 'a refusal names no NT');
  assert.equal(parseInitializeAnswer(INITIALIZE_ANSWER.slice(0, -4) + '6982'), null);
  assert.equal(parseInitializeAnswer(DEBIT_ANSWER), null);
});

test('TICK unit and the NT of a proof command', () => {
  assert.equal(tickUnit('805600000a0003' + '11'.repeat(8)), 3);
  assert.equal(tickUnit('805600000a0003' + '11'.repeat(8) + '00'), 3, 'Le is optional');
  assert.equal(tickUnit('80540000100003' + '11'.repeat(8)), null);
  assert.equal(proofNt(proofCommand(0x01020304)), 0x01020304);
  assert.equal(proofNt('805a00000400000001'), 1);
  assert.equal(proofNt('805a0000040000000100ff'), null);
  assert.equal(proofNt(INITIALIZE), null);
});
