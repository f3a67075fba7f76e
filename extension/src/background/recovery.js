// Recovery of a payment whose DEBIT or TICK answer was lost (spec 5.5): wait until the
// card that paid is back in the reader, then relay the payment service's status-only
// INITIALIZE and GET TRANSACTION PROOF in a host session that moves no money. Used by a
// running flow and by the redelivery of kept records (deliveries.js).

import { request } from '../lib/native-protocol.js';
import { readCard, waitCard } from './card.js';
import { HostError } from './host.js';

/**
 * Waits until the card `cardId` is in the reader. `notice(text|undefined)` tells the
 * shopper about another card in the reader. Resolves true, or false after `timeoutMs`.
 */
export async function waitForCardBack(host, cardId, timeoutMs, notice = () => {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const card = await readCard(host);
    if (card && card.cardId === cardId) {
      notice(undefined);
      return true;
    }
    notice(card ? 'This is another card: insert the card you paid with.' : undefined);
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await waitCard(host, !card, left); // another card: wait for it to leave; none: for one
  }
}

/**
 * The service's recovery of a card's pending transactions (spec 5.5): status-only
 * INITIALIZE and GET TRANSACTION PROOF, relayed in a host session that moves no money.
 * Returns the service's last answer ({done, outcomes}).
 */
export async function runRecovery(host, plugin, cardId, kv, log = () => {}) {
  let r;
  try {
    r = await plugin.startRecovery(cardId, kv);
  } catch (e) {
    if (e.code === 'nothing_to_recover') return { done: true, outcomes: [] };
    throw e;
  }
  const opened = await host.call(request.openRecovery(), 15000);
  try {
    while (r.command) {
      let response = null;
      try {
        response = (await host.call(request.apdu(opened.session, r.command), 15000)).response;
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        log(`recovery exchange failed: ${e.code}`);
      }
      r = await plugin.recoveryAnswer(r.id, response);
    }
  } finally {
    await host.call(request.close(opened.session), 5000).catch(() => {});
  }
  return r;
}
