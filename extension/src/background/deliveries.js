// Card answers not yet acknowledged by the payment service are delivered again: at each
// start of the background, by an alarm while some remain, and on demand (the popup's
// "send again"). First the native host's held answers (`held`: the copy the host wrote
// before relaying a DEBIT/TICK answer, which survives the extension or the browser
// dying before its own copy was stored), matched to their payment by the card and the
// NT kept with it, each acknowledged to the host (`ack`) once the service has taken it
// or finally refused it; then the extension's own kept records. A kept recovery runs as
// soon as the card that paid is in the reader. The records themselves are lib/pending.js.

import { deliveryCall, isFinalRefusal } from '../lib/pending.js';
import { request } from '../lib/native-protocol.js';
import { pluginClient } from '../lib/plugin-api.js';
import { readCard } from './card.js';
import { runRecovery } from './recovery.js';

/**
 * Delivers the host's held answers (through the open `host`) whose payment has a kept
 * record here (`cardId` and `nt` match), oldest first, skipping the payment `busyWith`.
 * A held answer of no kept payment is left to the host (another browser of this user
 * may own it). A payment the service reports decided lets its record go. Returns
 * {delivered, refused, left}.
 */
export async function deliverHeld({ pending, fetch, host, busyWith = null, log = () => {} }) {
  const out = { delivered: 0, refused: 0, left: 0 };
  const records = Object.values(await pending.all()).filter((r) => r.paymentId !== busyWith && Number.isInteger(r.nt) && r.cardId);
  if (records.length === 0) return out;
  const { responses } = await host.call(request.held(), 5000);
  const held = (Array.isArray(responses) ? responses : [])
    .map((h) => ({ h, rec: records.find((r) => r.cardId === h.card_id && r.nt === h.nt) }))
    .filter((x) => x.rec)
    .sort((a, b) => a.h.nt - b.h.nt || a.h.k - b.h.k || a.h.at - b.h.at);
  for (const { h, rec } of held) {
    const plugin = pluginClient({ api: rec.api, pageOrigin: rec.pageOrigin, fetch });
    let p;
    try {
      // /answer takes a DEBIT's and a TICK's answer alike and never issues a next unit.
      p = await plugin.answer(rec.paymentId, rec.clientSecret, h.response);
    } catch (e) {
      if (e.code === 'recovery_required' || isFinalRefusal(e)) {
        // The service has decided what this answer is worth: the host may forget it.
        await host.call(request.ack(h.held_id), 5000).catch(() => {});
        if (e.code === 'recovery_required' && rec.kind !== 'recovery') await pending.put({ ...rec, kind: 'recovery', response: null });
        out.refused++;
        log(`held ${h.command} ${h.k} of ${rec.paymentId} refused by the service: ${e.code}`);
        continue;
      }
      out.left++;
      log(`held ${h.command} ${h.k} of ${rec.paymentId} still undelivered: ${e.code ?? e.message}`);
      continue;
    }
    await host.call(request.ack(h.held_id), 5000).catch(() => {});
    out.delivered++;
    log(`delivered the held ${h.command} ${h.k} of ${rec.paymentId}: ${p.status}`);
    if (p.status === 'succeeded' || p.status === 'failed') await pending.remove(rec.paymentId);
  }
  return out;
}

/**
 * One pass over the kept records, after the host's held answers. `busyWith` is the
 * payment id of the flow running now (its records are its own business). Returns
 * {delivered, recovered, left}.
 */
export async function deliverPending({ pending, fetch, makeHost, busyWith = null, log = () => {} }) {
  let all = await pending.all();
  const out = { delivered: 0, recovered: 0, left: 0 };
  let host = null;
  try {
    if (Object.values(all).some((r) => r.paymentId !== busyWith && Number.isInteger(r.nt))) {
      host = makeHost();
      const held = await deliverHeld({ pending, fetch, host, busyWith, log }).catch((e) => {
        log(`held answers not collected: ${e.code ?? e.message}`);
        return null;
      });
      if (held?.delivered || held?.refused) all = await pending.all();
    }
    for (const rec of Object.values(all)) {
      if (rec.paymentId === busyWith) continue;
      const plugin = pluginClient({ api: rec.api, pageOrigin: rec.pageOrigin, fetch });
      const call = deliveryCall(rec);
      try {
        if (call) {
          const [method, args] = call;
          await plugin[method](...args);
          await pending.remove(rec.paymentId);
          if (rec.heldId) {
            host ??= makeHost();
            await host.call(request.ack(rec.heldId), 5000).catch(() => {});
          }
          out.delivered++;
          log(`delivered the kept ${rec.kind} of ${rec.paymentId}`);
          continue;
        }
        // A recovery: only with the card that paid.
        host ??= makeHost();
        const card = await readCard(host);
        if (!card || card.cardId !== rec.cardId) {
          out.left++;
          continue;
        }
        const r = await runRecovery(host, plugin, { cardId: rec.cardId, kv: rec.kv, nt: rec.nt, clientSecret: rec.clientSecret }, log);
        const undecided = r.done === false || (r.outcomes ?? []).some((o) => o.payment === rec.paymentId && o.outcome === 'pending');
        if (undecided) throw Object.assign(new Error('the recovery left the payment undecided'), { code: 'recovery_pending' });
        await pending.remove(rec.paymentId);
        out.recovered++;
        log(`recovered ${rec.paymentId}`);
      } catch (e) {
        if (call && isFinalRefusal(e)) {
          // The service has decided about this payment: nothing left to deliver.
          await pending.remove(rec.paymentId);
          log(`dropped the kept ${rec.kind} of ${rec.paymentId}: ${e.code}`);
          continue;
        }
        if (call && e.code === 'recovery_required') {
          await pending.put({ ...rec, kind: 'recovery', response: null });
        }
        await pending.attempted(rec.paymentId);
        out.left++;
        log(`kept ${rec.kind} of ${rec.paymentId} still undelivered: ${e.code ?? e.message}`);
      }
    }
  } finally {
    host?.close();
  }
  return out;
}
