// The shopper's card through the native host, outside a payment: is a card there (and
// what it holds), wait for one, and its recent transactions for the popup's history
// (`card_history`: the host reads them itself; no session, no APDU of ours).

import { request } from '../lib/native-protocol.js';
import { HostError } from './host.js';

/** The card view in the reader, or null when there is no card (see `withCard`). */
export async function readCard(host) {
  return withCard(host, request.cardInfo(), (r) => cardOf(r.card));
}

/**
 * The card and its recent transactions, newest first ({card, records}), or null when
 * there is no card.
 */
export async function readHistory(host) {
  return withCard(host, request.cardHistory(), (r) => ({ card: cardOf(r.card), records: r.records.map(recordOf) }));
}

/**
 * Asks the host `req` about the card in the reader and gives its reply to `then`; null
 * when there is no card. A card that left while it was read (the reader service has not
 * noticed yet) is waited out, so the caller sees null rather than an error. Other
 * errors throw.
 */
async function withCard(host, req, then) {
  for (let attempt = 0; ; attempt++) {
    try {
      return then(await host.call(req, 10000));
    } catch (e) {
      if (e instanceof HostError && e.code === 'no_card') return null;
      if (!(e instanceof HostError && e.code === 'card_removed') || attempt >= 8) throw e;
      // The card left (or was pulled and put back) before the reader service noticed:
      // wait for it to notice the absence, briefly, then look again.
      await waitCard(host, false, 750);
    }
  }
}

/** The host's card description in the extension's words. */
export function cardOf(c) {
  return {
    cardId: c.card_id,
    kv: c.key_version,
    currency: c.currency_code ?? c.currency,
    currencyNumber: c.currency,
    balance: c.balance,
    ntLast: c.nt_last,
  };
}

/** Waits until a card is present (or absent, with present=false); resolves true, or false on timeout. */
export async function waitCard(host, present, timeoutMs) {
  try {
    const r = await host.call(request.waitCard(present, timeoutMs), timeoutMs + 5000);
    return r.present === present;
  } catch (e) {
    if (e instanceof HostError && e.code === 'timeout') return false;
    throw e;
  }
}

/** One of the host's history records in the extension's words (lib/history.js). */
export function recordOf(r) {
  return {
    nt: r.nt,
    samId: r.sam_id,
    samTxSeq: r.sam_tx_seq,
    dateTime: r.datetime,
    mode: r.mode,
    unitAmount: r.unit_amount,
    units: r.units,
    total: r.total,
    balanceAfter: r.balance_after,
  };
}
