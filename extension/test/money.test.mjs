// Amounts in minor units and their display (lib/money.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { currency, formatAmount, formatPeriod, isMinorAmount, multiply, sameCurrency } from '../src/lib/money.js';

test('amounts are written from minor units by their currency exponent', () => {
  assert.equal(formatAmount(1250, 'EUR'), '12.50 EUR');
  assert.equal(formatAmount(5, 'EUR'), '0.05 EUR');
  assert.equal(formatAmount(0, 978), '0.00 EUR');
  assert.equal(formatAmount(1250, 'JPY'), '1,250 JPY');
  assert.equal(formatAmount(1234567, 'KWD'), '1,234.567 KWD');
  assert.equal(formatAmount(123456789, '978'), '1,234,567.89 EUR');
  assert.equal(formatAmount(Number.MAX_SAFE_INTEGER, 'EUR'), '90,071,992,547,409.91 EUR');
});

test('only safe non-negative integers are amounts: never floats', () => {
  for (const bad of [12.5, -1, NaN, Infinity, '1250', 2 ** 53, null]) {
    assert.equal(isMinorAmount(bad), false, String(bad));
    assert.throws(() => formatAmount(bad, 'EUR'), TypeError);
  }
  assert.throws(() => formatAmount(1, 'euro'), TypeError);
});

test('currencies by code or ISO number', () => {
  assert.deepEqual(currency(978), { alpha: 'EUR', numeric: 978, exponent: 2, known: true });
  assert.equal(currency('978').alpha, 'EUR');
  assert.equal(currency('XYZ').known, false);
  assert.equal(currency(999), null);
  assert.equal(currency('eur'), null);
  assert.ok(sameCurrency('EUR', 978));
  assert.ok(!sameCurrency('EUR', 840));
  assert.ok(!sameCurrency('EUR', 999));
});

test('products are exact or refused', () => {
  assert.equal(multiply(200, 4), 800);
  assert.equal(multiply(2 ** 32 - 1, 65535), (2 ** 32 - 1) * 65535);
  assert.equal(multiply(2 ** 40, 2 ** 20), null);
});

test('periods in words', () => {
  assert.equal(formatPeriod(1), '1 second');
  assert.equal(formatPeriod(60), '1 minute');
  assert.equal(formatPeriod(90), '90 seconds');
  assert.equal(formatPeriod(7200), '2 hours');
  assert.equal(formatPeriod(86400), '1 day');
  assert.throws(() => formatPeriod(0), TypeError);
});
