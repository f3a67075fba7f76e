// Recovery of a payment whose DEBIT or TICK answer was lost (spec 5.5): wait until the
// card that paid is back in the reader, then relay the payment service's status-only
// INITIALIZE and GET TRANSACTION PROOF of the payment's own NT in a host session that
// moves no money, for a bounded number of commands. Used by a running flow and by the
// redelivery of kept records (deliveries.js).

import { MODE, parseInitialize, proofNt } from '../lib/apdu.js';
import { request } from '../lib/native-protocol.js';
import { readCard, waitCard } from './card.js';
import { FlowError } from './flow-error.js';
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

/** At most this many commands of the service per recovery run (a recovery needs two). */
export const MAX_RECOVERY_EXCHANGES = 6;

/**
 * What a recovery of transaction `nt` of a card of key version `kv` needs, and nothing
 * else (spec 5.5): first the status-only INITIALIZE (mode 00, U = 0, MaxUnits = 0), then
 * GET TRANSACTION PROOF of `nt` only. Returns null when `command` may go to the card, or
 * a sentence saying why not (the card's other records belong to other payments and
 * other shops: a shop reads none of them).
 */
export function recoveryRefusal(command, step, nt, kv) {
  if (step === 0) {
    const f = parseInitialize(command);
    if (f === null || f.mode !== MODE.STATUS || f.kv !== kv || f.unitAmount !== 0 || f.maxUnits !== 0) return 'the first command of a recovery must be a status-only INITIALIZE';
    return null;
  }
  const asked = proofNt(command);
  if (asked === null) return 'a recovery only reads the record of its own transaction';
  if (asked !== nt) return `the record of NT ${asked} is not this payment's (NT ${nt})`;
  return null;
}

/**
 * The service's recovery of the payment whose transaction is `nt` on card `cardId`
 * (spec 5.5), asked with that payment's `clientSecret`: status-only INITIALIZE and GET TRANSACTION PROOF of that NT, relayed in a
 * host session that moves no money (opened with `recovery.nt`), at most
 * MAX_RECOVERY_EXCHANGES commands. A command a recovery does not need is not relayed:
 * the service hears "no answer" (null) for it. Returns the service's last answer
 * ({done, outcomes}); done false when the run was cut at the bound.
 */
export async function runRecovery(host, plugin, { cardId, kv, nt, clientSecret }, log = () => {}) {
  if (!Number.isSafeInteger(nt) || nt < 1) throw new FlowError('extension', 'recovery_pending', 'the payment has no NT to recover');
  let r;
  try {
    r = await plugin.startRecovery(cardId, kv, clientSecret);
  } catch (e) {
    if (e.code === 'nothing_to_recover') return { done: true, outcomes: [] };
    throw e;
  }
  const opened = await host.call(request.openRecovery(nt), 15000);
  try {
    for (let step = 0; r.command; step++) {
      if (step >= MAX_RECOVERY_EXCHANGES) {
        log(`recovery cut after ${step} commands`);
        return { ...r, done: false };
      }
      let response = null;
      const refused = recoveryRefusal(r.command, step, nt, kv);
      if (refused) {
        log(`recovery: not relayed: ${refused}`);
      } else {
        try {
          response = (await host.call(request.apdu(opened.session, r.command), 15000)).response;
        } catch (e) {
          if (!(e instanceof HostError)) throw e;
          log(`recovery exchange failed: ${e.code}`);
        }
      }
      r = await plugin.recoveryAnswer(r.id, response);
    }
  } finally {
    await host.call(request.close(opened.session), 5000).catch(() => {});
  }
  return r;
}
