// A running time-cycle: after the first unit (the DEBIT), one TICK per confirmed period,
// relayed card <-> payment service like the DEBIT (kept in storage until the service
// has it), until the cap, the purse's end, or a Stop (the shopper's button or the page's
// stop; a TICK in flight finishes first).
//
// The pace is the shopper's, not the shop's: unit k goes to the card no earlier than
// the DEBIT's answer + (k-1) × the period the shopper confirmed, whatever the shop's
// replies say. A TICK the shop hands out early is held until it is due; a Stop before
// then withholds it (the service hears "no answer" and recovery settles the units).

import { tickUnit } from '../lib/apdu.js';
import { reply } from '../lib/page-protocol.js';
import { FlowError } from './flow-error.js';
import { HostError } from './host.js';

/** The native host's refusals of a TICK sent before its unit is due (the card saw nothing). */
export const TOO_EARLY_CODES = new Set(['too_early', 'not_due', 'tick_too_early']);
const TOO_EARLY_RETRIES = 3;

/** When unit `k` of a cycle whose DEBIT answered at `debitAt` (ms) is due: the confirmed pace. */
export function unitDueAt(debitAt, periodSeconds, k) {
  return debitAt + (k - 1) * periodSeconds * 1000;
}

/** Runs the cycle of flow `f` from the payment `p` (status running). */
export async function runCycle(f, p) {
  const { clock } = f;
  const due = (k) => unitDueAt(f.debitAt, f.terms.periodSeconds, k);
  let charged = 1; // the DEBIT was unit 1
  f.move('running');
  let command = null;
  for (;;) {
    f.facts.payment = p;
    f.render();
    if (p.status !== 'running') break;
    if (!command) {
      if (f.stopRequested) {
        f.move('stop');
        p = await f.withRetry(() => f.plugin.stop(f.ref.id, f.ref.clientSecret));
        continue;
      }
      // Ask for the next unit when it is due by the confirmed terms (and by the shop's clock).
      const shopDue = Number.isSafeInteger(p.next_due_at) ? p.next_due_at * 1000 + 50 : 0;
      const wait = Math.max(due(charged + 1), shopDue) - clock.now();
      if (wait > 0) {
        await clock.sleep(wait, f.stopWake.promise);
        continue; // woken by a Stop, or due now: look again
      }
      p = await f.withRetry(() => f.plugin.tick(f.ref.id, f.ref.clientSecret));
      command = p.command ?? null;
      if (!command) await clock.sleep(150, f.stopWake.promise); // not due yet by the shop's clock
      continue;
    }
    // A TICK in hand, however early the shop sent it: not before its unit is due.
    const k = Math.max(charged + 1, tickUnit(command) ?? 0);
    const wait = due(k) - clock.now();
    if (wait > 0) await clock.sleep(wait, f.stopWake.promise);
    if (clock.now() < due(k)) {
      // Stopped before unit k was due: the TICK never goes to the card.
      f.log(`unit ${k} withheld: stopped ${due(k) - clock.now()} ms before it was due`);
      return f.lost(new HostError('not_sent', '', `TICK ${k} withheld`), 'tick_withheld');
    }
    await f.keep('recovery'); // a TICK may debit: recovery must be possible
    let answer;
    try {
      answer = await relayTick(f, command);
    } catch (e) {
      if (e instanceof HostError) return f.lost(e);
      throw e;
    }
    charged = k;
    const stopping = f.stopRequested;
    if (stopping) f.move('stop');
    p = await f.deliver(stopping ? 'stop' : 'tick', answer, () => (stopping
      ? f.plugin.stop(f.ref.id, f.ref.clientSecret, answer.response)
      : f.plugin.tick(f.ref.id, f.ref.clientSecret, answer.response)));
    if (p.recovery_required) return f.lost(new HostError('card_error', '', 'the payment service could not verify the card answer'));
    command = p.command ?? null;
    f.move('unit');
    f.toPage(reply.progress(f.requestId, f.state === 'stopping' ? 'stopping' : 'running', p));
  }
  if (p.status === 'succeeded') return f.succeed(p);
  throw new FlowError('plugin', p.failure?.code ?? 'wrong_state', p.failure?.message, p);
}

/** Sends a due TICK; a host whose clock says "not yet" (the card saw nothing) is asked again a second later. */
async function relayTick(f, command) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f.apdu(command);
    } catch (e) {
      if (!(e instanceof HostError && TOO_EARLY_CODES.has(e.code)) || attempt >= TOO_EARLY_RETRIES) throw e;
      f.log(`the host found the TICK early (${e.detail}); again in a second`);
      await f.clock.sleep(1000);
    }
  }
}
