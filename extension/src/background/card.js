// The shopper's card through the native host, outside a payment: is a card there (and
// what it holds), wait for one, and read its recent transactions (GET TRANSACTION PROOF
// in a session that moves no money) for the popup's history.

import { request } from '../lib/native-protocol.js';
import { parseRecord, proofCommand, statusWord } from '../lib/apdu.js';
import { HostError } from './host.js';

/**
 * The card view in the reader, or null when there is no card. A card that left while
 * it was read (the reader service has not noticed yet) is waited out, so the caller
 * sees null rather than an error. Other errors throw.
 */
export async function readCard(host) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await host.call(request.cardInfo(), 10000);
      return cardOf(r.card);
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

/** The card's recent transactions, newest first (at most `max`): the popup's history. */
export async function readHistory(host, max = 16) {
  const opened = await host.call(request.openRecovery(), 10000);
  const card = cardOf(opened.card);
  const records = [];
  try {
    for (let nt = card.ntLast; nt >= 1 && records.length < max && nt > card.ntLast - 16; nt--) {
      const r = await host.call(request.apdu(opened.session, proofCommand(nt)), 10000);
      const rec = parseRecord(r.response);
      if (rec) records.push(rec);
      else if (statusWord(r.response) !== '6a83') break;
    }
  } finally {
    await host.call(request.close(opened.session), 5000).catch(() => {});
  }
  return { card, records };
}
