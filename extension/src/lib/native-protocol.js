// The native-messaging protocol with the purse native host, version 1
// (schema/native-messaging.schema.json, native-host/src/message): the requests the
// extension sends, the replies it expects for each, the version check, and the host's
// errors as {code, message, detail}. Pure: the port itself is background/host.js.
//
//   hello {protocol, client}              -> hello {protocol, supported, host, version}
//   status                                -> status {pcsc, readers, session, held}
//   card_info {reader?}                   -> card_info {reader, card}
//   card_history {reader?}                -> card_history {reader, card, records}
//   wait_card {present, timeout_ms}       -> card_event {reader, present}
//   open_session {purpose, payment?, recovery?, idle_timeout_ms?}
//                                         -> session_opened {session, purpose, reader, card}
//   apdu {session, apdu}                  -> apdu {session, response, held_id?}
//   close_session {session}               -> session_closed {session, reason}
//   cancel                                -> cancelled {session}
//   held                                  -> held {responses}
//   ack {held_id}                         -> acked {held_id, removed}
//   any request                           -> error {code, message, detail}
//   events (no id): session_closed {session, reason}

import { currency } from './money.js';

export const PROTOCOL = 1;
/** The host's registered name (its native-messaging manifest's "name"). */
export const HOST_NAME = 'org.purse.native_host';

const EXPECTED = {
  hello: 'hello',
  status: 'status',
  card_info: 'card_info',
  card_history: 'card_history',
  wait_card: 'card_event',
  open_session: 'session_opened',
  apdu: 'apdu',
  close_session: 'session_closed',
  cancel: 'cancelled',
  held: 'held',
  ack: 'acked',
};

export const request = {
  hello: (client) => ({ type: 'hello', protocol: PROTOCOL, client }),
  status: () => ({ type: 'status' }),
  cardInfo: () => ({ type: 'card_info' }),
  /**
   * The card's own recent records, read by the host itself (it chooses every command:
   * no APDU of ours, nor a shop's, reaches the card this way): the popup's history.
   */
  cardHistory: () => ({ type: 'card_history' }),
  waitCard: (present, timeoutMs) => ({ type: 'wait_card', present, timeout_ms: timeoutMs }),
  /** A payment session for exactly the terms the shopper confirmed (the host's amount guard). */
  openPayment: (terms, idleTimeoutMs) => ({
    type: 'open_session',
    purpose: 'payment',
    payment: {
      mode: terms.mode,
      unit_amount: terms.unitAmount,
      max_units: terms.maxUnits,
      currency: currencyNumber(terms.currency),
      // The host holds a time-cycle to the confirmed pace too (unit k not before the
      // DEBIT + (k-1) periods).
      ...(terms.mode === 'time_cycle' ? { period_seconds: terms.periodSeconds } : {}),
    },
    ...(idleTimeoutMs ? { idle_timeout_ms: idleTimeoutMs } : {}),
  }),
  /**
   * A session that moves no money, for the recovery of the transaction `nt` (the NT of
   * the payment's INITIALIZE answer, never the shop's word): the host relays the
   * status-only INITIALIZE and GET TRANSACTION PROOF of that NT only.
   */
  openRecovery: (nt) => ({ type: 'open_session', purpose: 'recovery', recovery: { nt } }),
  apdu: (session, apdu) => ({ type: 'apdu', session, apdu }),
  close: (session) => ({ type: 'close_session', session }),
  cancel: () => ({ type: 'cancel' }),
  held: () => ({ type: 'held' }),
  ack: (heldId) => ({ type: 'ack', held_id: heldId }),
};

function currencyNumber(c) {
  const cur = currency(c);
  if (cur === null || cur.numeric === null) throw new RangeError(`no ISO 4217 number for ${c}`);
  return cur.numeric;
}

/**
 * Sorts a reply to `req`: {ok: true, reply} when it is the expected type, else
 * {ok: false, error: {code, message, detail}}.
 */
export function interpret(req, reply) {
  if (reply === null || typeof reply !== 'object') return fail('invalid_reply', 'the host sent no object');
  if (reply.type === 'error') {
    return fail(String(reply.code ?? 'internal'), typeof reply.message === 'string' ? reply.message : '', typeof reply.detail === 'string' ? reply.detail : '');
  }
  const want = EXPECTED[req.type];
  if (reply.type !== want) return fail('invalid_reply', '', `expected ${want}, got ${String(reply.type)}`);
  return { ok: true, reply };
}

function fail(code, message, detail = '') {
  return { ok: false, error: { code, message, detail } };
}

/**
 * The version check of a hello reply: null when the host speaks our protocol, else the
 * extension's error code: host_outdated (it speaks only older versions) or
 * extension_outdated (only newer ones).
 */
export function versionProblem(helloReply) {
  const supported = Array.isArray(helloReply?.supported) ? helloReply.supported : [helloReply?.protocol];
  if (supported.includes(PROTOCOL)) return null;
  const nums = supported.filter(Number.isInteger);
  if (nums.length && nums.every((v) => v < PROTOCOL)) return 'host_outdated';
  return 'extension_outdated';
}

/**
 * The side to update after the host refused our hello with version_mismatch, from the
 * versions its detail names ("… this host speaks [2, 3]"); version_mismatch itself
 * ("update both") when it names none.
 */
export function mismatchProblem(detail) {
  const m = /host speaks \[([0-9, ]*)\]/.exec(String(detail ?? ''));
  if (!m) return 'version_mismatch';
  const supported = m[1].split(',').map((x) => Number(x.trim())).filter(Number.isInteger);
  return versionProblem({ supported }) ?? 'version_mismatch';
}

/** Whether a native-messaging connect error means the host is not installed. */
export function isNotInstalled(message) {
  return /not found|not installed|Specified native messaging host not found|No such native application/i.test(String(message ?? ''));
}
