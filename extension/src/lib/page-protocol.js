// The page <-> extension protocol, version 1 (docs/checkout-protocol.md,
// schema/checkout-protocol.schema.json; checkout.js is the page's side): validation of
// what the page sends and the extension's replies. The page only names a payment
// (id, client secret, the payment service's base URL): amounts, currency and terms come
// from the payment service, fetched by the extension itself. Receivers ignore fields
// they do not know, so a page that adds an `amount` changes nothing.
//
//   page -> extension: hello | request | stop
//   extension -> page: ack | progress | success | failure

import { apiBase } from './origin.js';

export const NS = 'purse-checkout';
export const VERSION = 1;
export const SUPPORTED_VERSIONS = Object.freeze([1]);
export const STAGES = Object.freeze(['confirming', 'waiting_for_card', 'processing', 'running', 'stopping', 'recovering']);

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const PAYMENT_ID_RE = /^pay_[A-Za-z0-9]{1,64}$/;
const SECRET_TAIL_RE = /^[A-Za-z0-9_-]{1,256}$/;

/** Whether a window message is addressed to the extension at all (cheap, no checks). */
export function isForExtension(data) {
  return data !== null && typeof data === 'object' && !Array.isArray(data) && data.ns === NS && data.from === 'page';
}

/**
 * Validates a message from the page. Returns {ok: true, msg} with the normalised
 * message, or {ok: false, id, code, message} (id when the message had a usable one;
 * without one nobody can be answered).
 */
export function parsePageMessage(data) {
  if (!isForExtension(data)) return bad(null, 'invalid_request', 'not a purse-checkout message from the page');
  const id = typeof data.id === 'string' && ID_RE.test(data.id) ? data.id : null;
  if (id === null) return bad(null, 'invalid_request', 'the message needs an id: 1 to 64 letters, digits, _ or -');
  if (data.v !== VERSION) {
    return { ...bad(id, 'version_unsupported', `this extension speaks checkout protocol version ${SUPPORTED_VERSIONS.join(', ')}; the page sent ${JSON.stringify(data.v)}`), versions: [...SUPPORTED_VERSIONS] };
  }
  if (data.type === 'hello' || data.type === 'stop') return { ok: true, msg: { type: data.type, id } };
  if (data.type !== 'request') return bad(id, 'invalid_request', `a page sends hello, request or stop, not ${JSON.stringify(data.type)}`);
  const p = data.payment;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return bad(id, 'invalid_request', 'request.payment {id, client_secret, api_base} is required');
  if (typeof p.id !== 'string' || !PAYMENT_ID_RE.test(p.id)) return bad(id, 'invalid_request', 'payment.id must be a payment id (pay_...)');
  const secret = p.client_secret;
  const prefix = `${p.id}_secret_`;
  if (typeof secret !== 'string' || !secret.startsWith(prefix) || !SECRET_TAIL_RE.test(secret.slice(prefix.length))) {
    return bad(id, 'invalid_request', 'payment.client_secret must be the client secret of this payment');
  }
  const api = apiBase(p.api_base);
  if (api === null) return bad(id, 'insecure_origin', 'payment.api_base must be the https URL of the payment service (http only on localhost)');
  return { ok: true, msg: { type: 'request', id, payment: { api, id: p.id, clientSecret: secret } } };
}

function bad(id, code, message) {
  return { ok: false, id, code, message };
}

function envelope(type, id, body) {
  return { ns: NS, v: VERSION, from: 'extension', type, id, ...body };
}

export const reply = {
  /** The answer to hello and to request (sent at once, before any UI). */
  ack: (id, extension) => envelope('ack', id, { extension: { name: extension.name, version: extension.version }, versions: [...SUPPORTED_VERSIONS] }),
  progress: (id, stage, payment) => {
    if (!STAGES.includes(stage)) throw new RangeError(`unknown stage ${stage}`);
    return envelope('progress', id, { stage, ...(payment ? { payment: publicPayment(payment) } : {}) });
  },
  success: (id, payment) => envelope('success', id, { payment: publicPayment(payment) }),
  /** `source`: plugin | host | extension | page. */
  failure: (id, error, payment) => envelope('failure', id, {
    error: {
      code: error.code,
      message: error.message,
      source: error.source ?? 'extension',
      ...(error.versions ? { versions: error.versions } : {}),
    },
    ...(payment ? { payment: publicPayment(payment) } : {}),
  }),
};

/** What the page learns: the payment service's own view (no card details). */
export function publicPayment(p) {
  const out = { id: p.id, object: 'payment', status: p.status };
  for (const k of ['mode', 'amount', 'currency', 'time_cycle', 'description', 'charged', 'balance_after', 'next_due_at', 'failure']) {
    if (p[k] !== undefined && p[k] !== null) out[k] = p[k];
  }
  return out;
}
