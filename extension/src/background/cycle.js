// A running time-cycle: after the first unit (the DEBIT), one TICK each time the shop's
// clock says a unit is due, relayed card <-> payment service like the DEBIT (kept in
// storage until the service has it), until the cap, the purse's end, or a Stop (the
// shopper's button or the page's stop; a TICK in flight finishes first).

import { reply } from '../lib/page-protocol.js';
import { FlowError, sleep } from './flow-error.js';
import { HostError } from './host.js';

/** Runs the cycle of flow `f` from the payment `p` (status running). */
export async function runCycle(f, p) {
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
      const dueMs = Number.isSafeInteger(p.next_due_at) ? p.next_due_at * 1000 + 50 - Date.now() : 1000;
      await sleep(Math.min(Math.max(dueMs, 100), f.terms.periodSeconds * 1000 + 1000), f.stopWake.promise);
      if (f.stopRequested) continue;
      p = await f.withRetry(() => f.plugin.tick(f.ref.id, f.ref.clientSecret));
      command = p.command ?? null;
      if (!command) await sleep(150, f.stopWake.promise); // not due yet by the shop's clock
      continue;
    }
    await f.keep('recovery'); // a TICK may debit: recovery must be possible
    let answer;
    try {
      answer = await f.apdu(command);
    } catch (e) {
      if (e instanceof HostError) return f.lost(e);
      throw e;
    }
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
