// The payment service's shopper API (the shop plugin, schema/openapi.yaml), as the
// extension calls it on behalf of a page: every call names the page's origin (as the
// browser reported it) in the Purse-Page-Origin header, carries no cookies, and has a
// network timeout. Errors come back as {code, message, source, status}: the plugin's
// own code (source "plugin": a JSON body {error: {code}}), or network_unreachable /
// network_timeout / service_error (source "extension": no answer, or an answer that is
// not the plugin's, such as a proxy's HTML 403/502 page).
// `fetch` is passed in, so node's tests run it against a real HTTP server.

export const PAGE_ORIGIN_HEADER = 'purse-page-origin';
export const DEFAULT_TIMEOUT_MS = 15000;

export class PluginError extends Error {
  constructor(code, message, { status = 0, source = 'plugin', body = null, retryAfterMs = null } = {}) {
    super(message);
    this.name = 'PluginError';
    this.code = code;
    this.source = source;
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * Whether the request may be repeated as it is: no answer, an answer that is not the
   * plugin's own (a proxy or gateway page, whatever its status), or a transient status
   * of the plugin (408, 429, 5xx).
   */
  get retryable() {
    if (this.source !== 'plugin') return true;
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/**
 * A client for one payment service and one page origin.
 * @param {{api: string, pageOrigin: string, fetch: Function, timeoutMs?: number}} o
 */
export function pluginClient({ api, pageOrigin, fetch, timeoutMs = DEFAULT_TIMEOUT_MS }) {
  async function call(method, path, body) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const headers = { [PAGE_ORIGIN_HEADER]: pageOrigin, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let r;
    try {
      r = await fetch(api + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        signal: ctl.signal,
      });
    } catch (e) {
      clearTimeout(timer);
      if (ctl.signal.aborted) throw new PluginError('network_timeout', `no answer from the payment service within ${timeoutMs} ms`, { source: 'extension' });
      throw new PluginError('network_unreachable', `the payment service cannot be reached (${e?.message ?? e})`, { source: 'extension' });
    }
    let json = null;
    const isJson = /^application\/([a-z.+-]*\+)?json\b/i.test(r.headers?.get?.('content-type') ?? '');
    try {
      if (isJson) json = await r.json();
      else await r.body?.cancel?.();
    } catch {
      // handled below: a body that is not JSON
    } finally {
      clearTimeout(timer);
    }
    if (r.ok && json !== null && typeof json === 'object') return json;
    const retryAfterMs = retryAfter(r.headers?.get?.('retry-after'));
    const e = json?.error;
    if (e && typeof e.code === 'string' && !r.ok) {
      throw new PluginError(e.code, typeof e.message === 'string' ? e.message : e.code, { status: r.status, body: e, retryAfterMs });
    }
    throw new PluginError('service_error', `the payment service answered HTTP ${r.status} without its own error object`, { status: r.status, source: 'extension', retryAfterMs });
  }

  const pay = (id) => `/v1/checkout/payments/${encodeURIComponent(id)}`;
  return {
    /** GET the payment (the shopper view, with `initialize` while it waits for a card). */
    payment: (id, secret) => call('GET', `${pay(id)}?client_secret=${encodeURIComponent(secret)}`),
    /** The card's INITIALIZE answer: the DEBIT comes back as `command`. */
    initialize: (id, secret, kv, response) => call('POST', `${pay(id)}/initialize`, { client_secret: secret, kv, response }),
    /** The card's answer to the DEBIT (or TICK) in flight; null: the exchange failed. */
    answer: (id, secret, response) => call('POST', `${pay(id)}/answer`, { client_secret: secret, response }),
    /** Time-cycle: the previous unit's answer (if any), then the next TICK when due. */
    tick: (id, secret, response) => call('POST', `${pay(id)}/tick`, response === undefined ? { client_secret: secret } : { client_secret: secret, answer: { response } }),
    /** Time-cycle: stop (with the last unit's answer, if one is in hand). */
    stop: (id, secret, response) => call('POST', `${pay(id)}/stop`, response === undefined ? { client_secret: secret } : { client_secret: secret, answer: { response } }),
    /** Recovery of the card's pending transactions, as the holder of the client secret of a payment it paid: the first command comes back. */
    startRecovery: (cardId, kv, secret) => call('POST', '/v1/checkout/recoveries', { card_id: cardId, kv, client_secret: secret }),
    /** The card's answer to the recovery's last command. */
    recoveryAnswer: (rid, response) => call('POST', `/v1/checkout/recoveries/${encodeURIComponent(rid)}`, { response }),
  };
}

/** A Retry-After header in seconds (dates are not used by the plugin), at most a minute; null when absent. */
export function retryAfter(v) {
  if (typeof v !== 'string' || !/^\s*\d+\s*$/.test(v)) return null;
  return Math.min(60000, Number(v) * 1000);
}
