// Card answers the payment service has not acknowledged yet, kept in extension storage
// (chrome.storage.local) so that a closed tab, a lost connection or a browser restart
// loses no money: each is delivered again on retry and at the next start, until the
// service confirms; a payment whose answer was lost (card pulled) is kept for recovery
// with the card. One record per payment. `storage` is {get(key), set(key, value)}.

const KEY = 'pendingDeliveries';
export const KINDS = Object.freeze(['answer', 'tick', 'stop', 'recovery']);

/**
 * A record to keep: {kind, api, pageOrigin, paymentId, clientSecret, response?,
 * cardId?, kv?, nt?}. `answer`/`tick`/`stop` carry the card's response (hex); `recovery`
 * names the card whose pending transaction the service must check. `nt` is the NT of
 * the card's INITIALIZE answer this payment relayed: the transaction a recovery is
 * about, and the key of the native host's held answers of this payment.
 */
export function makeRecord(r, now = Date.now()) {
  if (!KINDS.includes(r.kind)) throw new RangeError(`unknown kind ${r.kind}`);
  for (const k of ['api', 'pageOrigin', 'paymentId', 'clientSecret']) {
    if (typeof r[k] !== 'string' || r[k] === '') throw new TypeError(`a pending record needs ${k}`);
  }
  if (r.kind !== 'recovery' && typeof r.response !== 'string') throw new TypeError('a pending answer needs the card response');
  if (r.kind === 'recovery' && (typeof r.cardId !== 'string' || !Number.isInteger(r.kv))) throw new TypeError('a pending recovery needs the card id and kv');
  if (r.nt !== undefined && r.nt !== null && !(Number.isSafeInteger(r.nt) && r.nt >= 1 && r.nt <= 0xffffffff)) throw new RangeError('NT out of range');
  return {
    kind: r.kind,
    api: r.api,
    pageOrigin: r.pageOrigin,
    paymentId: r.paymentId,
    clientSecret: r.clientSecret,
    response: r.kind === 'recovery' ? null : r.response,
    cardId: r.cardId ?? null,
    kv: r.kv ?? null,
    nt: r.nt ?? null,
    savedAt: now,
    attempts: 0,
  };
}

/** What the delivery of a record asks of the payment service: [method, args]. */
export function deliveryCall(rec) {
  switch (rec.kind) {
    case 'answer': return ['answer', [rec.paymentId, rec.clientSecret, rec.response]];
    // A TICK's answer goes to /answer: /tick would also issue the next unit, which no
    // running flow would relay.
    case 'tick': return ['answer', [rec.paymentId, rec.clientSecret, rec.response]];
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

/**
 * The plugin's own refusals after which a kept card answer can never be taken, with the
 * HTTP status the plugin gives each (schema/openapi.yaml): the payment was decided
 * (by the answer taken before, by recovery, by its end) or the answer is not an APDU.
 */
export const FINAL_REFUSALS = Object.freeze({
  nothing_in_flight: 409,
  wrong_state: 409,
  not_running: 409,
  not_time_cycle: 409,
  payment_expired: 410,
  invalid_apdu: 400,
});

/**
 * Whether a service error means the record can never be delivered (drop it): only the
 * plugin's own JSON error ({error: {code}}) with a final code at its status. Anything
 * else (a proxy's or gateway's page of any status, 408/429/5xx, no answer, a code that
 * is not final) keeps the record: the card has paid, and only the plugin may say the
 * answer is no longer wanted. recovery_required keeps it too: it becomes a recovery.
 */
export function isFinalRefusal(err) {
  if (err?.source !== 'plugin' || err.body === null || typeof err.body !== 'object') return false;
  return Object.prototype.hasOwnProperty.call(FINAL_REFUSALS, err.code) && FINAL_REFUSALS[err.code] === err.status;
}
