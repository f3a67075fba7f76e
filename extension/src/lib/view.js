// What the confirmation window shows, as plain text built from the flow's facts: the
// shop's origin (as the browser reported it), the terms from the payment service, the
// card's balance, the state and its sentence, the running total, the result. Pure, so
// the texts are tested in node; the window only puts them on screen.

import { formatAmount, formatPeriod } from './money.js';
import { displayHost } from './origin.js';

const STATE_TEXT = {
  loading: 'Loading the payment…',
  waiting_for_card: 'Insert your purse card into the reader.',
  confirming: 'Check the payment, then press Pay.',
  processing: 'Paying… keep the card in the reader.',
  running: 'Paying by time. Press Stop to end it.',
  stopping: 'Stopping…',
  recovering: 'Checking with your card what was charged…',
  delivering: 'The card has paid. Waiting for the shop to confirm…',
  succeeded: 'Paid.',
  failed: 'The payment did not go through.',
  canceled: 'Cancelled. Nothing was charged.',
};

/**
 * The view of a flow. `f` = {state, pageOrigin, serviceOrigin?, terms?, card? {balance, currency},
 * payment? (the service's latest view), error? ({message, action, code}), notice?,
 * payMs?}.
 */
export function buildView(f) {
  const v = {
    state: f.state,
    headline: STATE_TEXT[f.state] ?? '',
    origin: f.pageOrigin,
    host: displayHost(f.pageOrigin),
    // The payment service, when it is not the page's own origin.
    serviceOrigin: f.serviceOrigin && f.serviceOrigin !== f.pageOrigin ? f.serviceOrigin : undefined,
    canPay: false,
    showPay: ['loading', 'waiting_for_card', 'confirming'].includes(f.state),
    canCancel: ['loading', 'waiting_for_card', 'confirming'].includes(f.state),
    canStop: f.state === 'running',
    canClose: ['succeeded', 'failed', 'canceled'].includes(f.state),
  };
  const t = f.terms;
  if (t) {
    v.description = t.description || '(no description)';
    v.mode = t.mode;
    if (t.mode === 'single') {
      v.amountText = formatAmount(t.unitAmount, t.currency);
    } else {
      v.amountText = `${formatAmount(t.unitAmount, t.currency)} per ${formatPeriod(t.periodSeconds)}`;
      v.unitText = formatAmount(t.unitAmount, t.currency);
      v.periodText = formatPeriod(t.periodSeconds);
      v.capText = `at most ${t.maxUnits} × ${formatAmount(t.unitAmount, t.currency)} = ${formatAmount(t.cap, t.currency)}`;
    }
  }
  if (f.card) {
    v.balanceText = formatAmount(f.card.balance, f.card.currency);
    v.cardId = f.card.cardId;
    if (t && f.state === 'confirming') {
      const first = t.unitAmount;
      v.insufficient = f.card.balance < first;
      v.canPay = !v.insufficient && f.card.currencyOk !== false;
      if (v.insufficient) {
        v.notice = `Your card holds ${v.balanceText}; this payment needs ${formatAmount(first, t.currency)}. Load your card or insert another purse card.`;
      } else if (f.card.currencyOk === false) {
        v.notice = 'This card holds another currency than the payment. Insert a purse card in the payment\'s currency.';
      }
    }
  }
  const p = f.payment;
  // Once the card has paid, its balance is the one the card reported after the debit.
  if (p && t && Number.isSafeInteger(p.balance_after) && f.card) v.balanceText = formatAmount(p.balance_after, t.currency);
  if (p && t && p.charged && Number.isSafeInteger(p.charged.total)) {
    v.units = p.charged.units;
    v.chargedText = formatAmount(p.charged.total, t.currency);
    if (t.mode === 'time_cycle') v.runningText = `${p.charged.units} of ${t.maxUnits} periods charged: ${v.chargedText}`;
  }
  if (p && Number.isSafeInteger(p.balance_after) && t) v.newBalanceText = formatAmount(p.balance_after, t.currency);
  if (f.error) {
    v.errorCode = f.error.code;
    v.errorText = f.error.message;
    v.actionText = f.error.action;
  }
  if (f.notice && !v.notice) v.notice = f.notice;
  if (Number.isFinite(f.payMs)) v.payMs = Math.round(f.payMs);
  return v;
}
