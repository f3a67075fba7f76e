// The confirmation window's and the popup's texts (lib/view.js, lib/history.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { buildView } from '../src/lib/view.js';
import { historyRows } from '../src/lib/history.js';

const single = { id: 'pay_1', mode: 'single', currency: 'EUR', description: 'Coffee beans', unitAmount: 1250, maxUnits: 1, periodSeconds: null, cap: 1250 };
const cycle = { id: 'pay_2', mode: 'time_cycle', currency: 'EUR', description: 'Parking', unitAmount: 50, maxUnits: 10, periodSeconds: 60, cap: 500 };
const card = (balance) => ({ cardId: '1000000000000001', balance, currency: 'EUR', currencyOk: true });

test('the confirmation shows origin, terms and balance, and Pay', () => {
  const v = buildView({ state: 'confirming', pageOrigin: 'http://127.0.0.1:8080', terms: single, card: card(10000) });
  assert.equal(v.host, '127.0.0.1:8080');
  assert.equal(v.origin, 'http://127.0.0.1:8080');
  assert.equal(v.serviceOrigin, undefined, 'no second line when the page serves its own payments');
  assert.equal(buildView({ state: 'confirming', pageOrigin: 'https://shop.example', serviceOrigin: 'https://pay.example' }).serviceOrigin, 'https://pay.example');
  assert.equal(v.amountText, '12.50 EUR');
  assert.equal(v.description, 'Coffee beans');
  assert.equal(v.balanceText, '100.00 EUR');
  assert.equal(v.canPay, true);
  assert.equal(v.canCancel, true);
});

test('time-cycle: the price per period, the period and the cap; then the running total', () => {
  const v = buildView({ state: 'confirming', pageOrigin: 'https://shop.example', terms: cycle, card: card(10000) });
  assert.equal(v.amountText, '0.50 EUR per 1 minute');
  assert.equal(v.unitText, '0.50 EUR');
  assert.equal(v.periodText, '1 minute');
  assert.equal(v.capText, 'at most 10 × 0.50 EUR = 5.00 EUR');
  const r = buildView({ state: 'running', pageOrigin: 'https://shop.example', terms: cycle, card: card(10000), payment: { charged: { units: 3, total: 150 } } });
  assert.equal(r.runningText, '3 of 10 periods charged: 1.50 EUR');
  assert.equal(r.canStop, true);
  assert.equal(r.canPay, false);
});

test('not enough money: no Pay, and a sentence that says what to do', () => {
  const v = buildView({ state: 'confirming', pageOrigin: 'https://shop.example', terms: single, card: card(1000) });
  assert.equal(v.canPay, false);
  assert.equal(v.insufficient, true);
  assert.match(v.notice, /holds 10.00 EUR; this payment needs 12.50 EUR/);
  const w = buildView({ state: 'confirming', pageOrigin: 'https://shop.example', terms: single, card: { ...card(10000), currencyOk: false } });
  assert.equal(w.canPay, false);
});

test('the result: charged, new balance, error sentences', () => {
  const v = buildView({ state: 'succeeded', pageOrigin: 'https://shop.example', terms: single, card: card(10000), payment: { charged: { units: 1, total: 1250 }, balance_after: 8750 }, payMs: 41.6 });
  assert.equal(v.balanceText, '87.50 EUR', 'the card balance after the debit');
  assert.equal(v.showPay, false);
  assert.equal(v.chargedText, '12.50 EUR');
  assert.equal(v.newBalanceText, '87.50 EUR');
  assert.equal(v.payMs, 42);
  assert.equal(v.canClose, true);
  const f = buildView({ state: 'failed', pageOrigin: 'https://shop.example', terms: single, error: { code: 'no_pcsc_service', message: 'M.', action: 'A.' } });
  assert.deepEqual([f.errorCode, f.errorText, f.actionText], ['no_pcsc_service', 'M.', 'A.']);
});

test('history rows of the card records', () => {
  const rows = historyRows([
    { nt: 2, samId: '5a00000000000001', dateTime: 1795000100, mode: 'time_cycle', unitAmount: 200, units: 3, total: 600, balanceAfter: 8150 },
    { nt: 1, samId: '5a00000000000001', dateTime: 1795000000, mode: 'single', unitAmount: 1250, units: 1, total: 1250, balanceAfter: 8750 },
  ], 'EUR');
  assert.equal(rows[0].amount, '6.00 EUR (3 × 2.00 EUR)');
  assert.equal(rows[1].amount, '12.50 EUR');
  assert.equal(rows[1].balance, '87.50 EUR');
  assert.equal(rows[1].date, '2026-11-18 11:06');
});
