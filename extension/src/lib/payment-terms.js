// The terms the shopper confirms, taken from the payment service's own payment object
// (GET /v1/checkout/payments/{id}), never from the page: mode, currency, the price (or
// the price per period, the period and the cap), the description. Also checks that the
// INITIALIZE commands the service hands out carry exactly these terms, so the card is
// never asked for anything the shopper did not see.

import { currency, isMinorAmount, multiply } from './money.js';
import { MODE, parseInitialize } from './apdu.js';

const MAX_DESCRIPTION = 200;

/**
 * The confirmed terms of a payment object, or {error} with a sentence when the object
 * is not one the extension can show truthfully.
 */
export function termsOf(p) {
  if (p === null || typeof p !== 'object') return { error: 'the payment service sent no payment' };
  if (typeof p.id !== 'string' || p.id === '') return { error: 'the payment has no id' };
  const cur = currency(p.currency);
  if (cur === null) return { error: `the payment's currency ${JSON.stringify(p.currency)} is not a currency` };
  const description = typeof p.description === 'string' ? p.description.slice(0, MAX_DESCRIPTION) : '';
  if (p.mode === 'single') {
    if (!isMinorAmount(p.amount) || p.amount < 1) return { error: 'the payment has no valid amount' };
    return {
      id: p.id, mode: 'single', currency: cur.alpha, description,
      unitAmount: p.amount, maxUnits: 1, periodSeconds: null, cap: p.amount,
    };
  }
  if (p.mode === 'time_cycle') {
    const tc = p.time_cycle;
    if (tc === null || typeof tc !== 'object') return { error: 'the time-cycle payment has no terms' };
    const { unit_amount: unit, period_seconds: period, max_units: max } = tc;
    if (!isMinorAmount(unit) || unit < 1) return { error: 'the time-cycle payment has no valid price per period' };
    if (!Number.isSafeInteger(period) || period < 1) return { error: 'the time-cycle payment has no valid period' };
    if (!Number.isSafeInteger(max) || max < 1 || max > 0xffff) return { error: 'the time-cycle payment has no valid cap' };
    const cap = multiply(unit, max);
    if (cap === null) return { error: 'the time-cycle cap is too large' };
    return {
      id: p.id, mode: 'time_cycle', currency: cur.alpha, description,
      unitAmount: unit, maxUnits: max, periodSeconds: period, cap,
    };
  }
  return { error: `the payment's mode ${JSON.stringify(p.mode)} is unknown to this extension` };
}

/** The INITIALIZE for a card of key version `kv` from a payment object, checked. */
export function initializeFor(p, kv, terms) {
  const list = Array.isArray(p?.initialize) ? p.initialize : [];
  const entry = list.find((e) => e && e.kv === kv);
  if (!entry) return { error: 'card_not_accepted' };
  const f = parseInitialize(entry.apdu);
  if (f === null || f.kv !== kv) return { error: 'initialize_invalid' };
  if (!sameTerms(f, terms)) return { error: 'amount_mismatch' };
  return { apdu: entry.apdu.toLowerCase() };
}

/** Whether INITIALIZE fields {mode, unitAmount, maxUnits} are exactly the terms. */
export function sameTerms(f, terms) {
  const mode = terms.mode === 'single' ? MODE.SINGLE : MODE.TIME_CYCLE;
  return f.mode === mode && f.unitAmount === terms.unitAmount && f.maxUnits === terms.maxUnits;
}
