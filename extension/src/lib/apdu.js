// Purse APDUs as the extension reads them (hex text in, plain numbers out): the fields
// of an INITIALIZE command (to check it against what the shopper confirmed), the NT a
// recovery's proof asks for, and status words; SELECT and the card's history are the
// native host's. Nothing here decides about money: the SAM and the host's amount guard do;
// this is for display and for refusing early.

export const MODE = Object.freeze({ STATUS: 0, SINGLE: 1, TIME_CYCLE: 2 });

/** Lowercase hex of even length, or null. */
export function normalHex(h) {
  return typeof h === 'string' && /^([0-9a-fA-F]{2})*$/.test(h) ? h.toLowerCase() : null;
}

function bytes(h) {
  const n = normalHex(h);
  if (n === null) throw new TypeError('not hex');
  const out = new Uint8Array(n.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(n.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function hexOf(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function u(b, off, len) {
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + b[off + i];
  return v;
}

/** The status word of a response APDU ("9000"), or null when it is too short. */
export function statusWord(responseHex) {
  const n = normalHex(responseHex);
  return n !== null && n.length >= 4 ? n.slice(-4) : null;
}

/** The fields of an INITIALIZE FOR PURCHASE command, or null if it is not one. */
export function parseInitialize(commandHex) {
  let b;
  try {
    b = bytes(commandHex);
  } catch {
    return null;
  }
  if ((b.length !== 35 && b.length !== 36) || b[0] !== 0x80 || b[1] !== 0x50 || b[4] !== 0x1e) return null;
  return {
    mode: b[2],
    kv: b[3],
    samId: hexOf(b.subarray(5, 13)),
    unitAmount: u(b, 29, 4),
    maxUnits: u(b, 33, 2),
  };
}

/**
 * The fields of an INITIALIZE FOR PURCHASE answer that the extension keeps (the card
 * id and the NT a recovery is about), or null when it is not a 42-byte answer + 9000.
 */
export function parseInitializeAnswer(responseHex) {
  const n = normalHex(responseHex);
  if (n === null || n.length !== 88 || statusWord(n) !== '9000') return null;
  const b = bytes(n);
  return { cardId: hexOf(b.subarray(0, 8)), nt: u(b, 8, 4), balance: u(b, 12, 4) };
}

/** The unit number k of a DEBIT TICK command, or null if it is not one. */
export function tickUnit(commandHex) {
  const n = normalHex(commandHex);
  if (n === null || (n.length !== 30 && n.length !== 32) || !n.startsWith('805600000a')) return null;
  return parseInt(n.slice(10, 14), 16);
}

/** The NT a GET TRANSACTION PROOF command asks for, or null if it is not one. */
export function proofNt(commandHex) {
  const n = normalHex(commandHex);
  if (n === null || (n.length !== 18 && n.length !== 20) || !n.startsWith('805a000004')) return null;
  return parseInt(n.slice(10, 18), 16);
}

/** The GET TRANSACTION PROOF command for `nt`. */
export function proofCommand(nt) {
  if (!Number.isInteger(nt) || nt < 1 || nt > 0xffffffff) throw new RangeError('NT out of range');
  return `805a000004${nt.toString(16).padStart(8, '0')}00`;
}
