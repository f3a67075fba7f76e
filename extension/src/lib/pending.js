// Card answers the payment service has not acknowledged yet, kept in extension storage
// (chrome.storage.local) so that a closed tab, a lost connection or a browser restart
// loses no money: each is delivered again on retry and at the next start, until the
// service confirms; a payment whose answer was lost (card pulled) is kept for recovery
// with the card. One record per payment. `storage` is {get(key), set(key, value)}.

const KEY = 'pendingDeliveries';
export const KINDS = Object.freeze(['answer', 'tick', 'stop', 'recovery']);

/**
 * A record to keep: {kind, api, pageOrigin, paymentId, clientSecret, response?,
 * cardId?, kv?}. `answer`/`tick`/`stop` carry the card's response (hex); `recovery`
 * names the card whose pending transaction the service must check.
 */
export function makeRecord(r, now = Date.now()) {
  if (!KINDS.includes(r.kind)) throw new RangeError(`unknown kind ${r.kind}`);
  for (const k of ['api', 'pageOrigin', 'paymentId', 'clientSecret']) {
    if (typeof r[k] !== 'string' || r[k] === '') throw new TypeError(`a pending record needs ${k}`);
  }
  if (r.kind !== 'recovery' && typeof r.response !== 'string') throw new TypeError('a pending answer needs the card response');
  if (r.kind === 'recovery' && (typeof r.cardId !== 'string' || !Number.isInteger(r.kv))) throw new TypeError('a pending recovery needs the card id and kv');
  return {
    kind: r.kind,
    api: r.api,
    pageOrigin: r.pageOrigin,
    paymentId: r.paymentId,
    clientSecret: r.clientSecret,
    response: r.kind === 'recovery' ? null : r.response,
    cardId: r.cardId ?? null,
    kv: r.kv ?? null,
    savedAt: now,
    attempts: 0,
  };
}

/** What the delivery of a record asks of the payment service: [method, args]. */
export function deliveryCall(rec) {
  switch (rec.kind) {
    case 'answer': return ['answer', [rec.paymentId, rec.clientSecret, rec.response]];
    case 'tick': return ['tick', [rec.paymentId, rec.clientSecret, rec.response]];
    case 'stop': return ['stop', [rec.paymentId, rec.clientSecret, rec.response]];
    default: return null; // recovery needs the card
  }
}

/** The pending records over a key-value storage. */
export class PendingStore {
  constructor(storage) {
    this.storage = storage;
    this.queue = Promise.resolve();
  }

  /** Runs read-modify-write steps one after the other (no lost update). */
  serial(f) {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => {});
    return run;
  }

  async all() {
    const v = await this.storage.get(KEY);
    return v && typeof v === 'object' ? v : {};
  }

  put(rec) {
    return this.serial(async () => {
      const all = await this.all();
      all[rec.paymentId] = rec;
      await this.storage.set(KEY, all);
    });
  }

  async get(paymentId) {
    return (await this.all())[paymentId] ?? null;
  }

  remove(paymentId) {
    return this.serial(async () => {
      const all = await this.all();
      if (!(paymentId in all)) return false;
      delete all[paymentId];
      await this.storage.set(KEY, all);
      return true;
    });
  }

  /** Counts a failed delivery attempt (for the backoff); returns the new count. */
  attempted(paymentId) {
    return this.serial(async () => {
      const all = await this.all();
      const rec = all[paymentId];
      if (!rec) return 0;
      rec.attempts += 1;
      await this.storage.set(KEY, all);
      return rec.attempts;
    });
  }
}

/** The wait before delivery attempt n+1 (ms): 1 s doubling, at most 60 s. */
export function retryDelayMs(attempts) {
  return Math.min(60000, 1000 * 2 ** Math.max(0, Math.min(attempts, 16)));
}

/** Whether a service error means the record can never be delivered (drop it). */
export function isFinalRefusal(err) {
  // A 4xx with a code is an answer: the service has decided (e.g. the payment expired).
  // recovery_required keeps the record: it becomes a recovery.
  return err?.status >= 400 && err.status < 500 && err.code !== 'recovery_required';
}
