// Card answers kept in storage and not yet acknowledged by the payment service are
// delivered again: at each start of the background, by an alarm while some remain, and
// on demand (the popup's "send again"). A kept recovery runs as soon as the card that
// paid is in the reader. The records themselves are lib/pending.js.

import { deliveryCall, isFinalRefusal } from '../lib/pending.js';
import { request } from '../lib/native-protocol.js';
import { pluginClient } from '../lib/plugin-api.js';
import { readCard } from './card.js';
import { runRecovery } from './recovery.js';

/**
 * One pass over the kept records. `busyWith` is the payment id of the flow running now
 * (its records are its own business). Returns {delivered, recovered, left}.
 */
export async function deliverPending({ pending, fetch, makeHost, busyWith = null, log = () => {} }) {
  const all = await pending.all();
  const out = { delivered: 0, recovered: 0, left: 0 };
  let host = null;
  try {
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
        await runRecovery(host, plugin, rec.cardId, rec.kv, log);
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
