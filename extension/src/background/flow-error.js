// What the payment flow's parts share: the flow's error (a catalogue entry, with the
// payment when there is one), turning any error into one, a promise settled from
// outside, and a sleep that a Stop can cut short.

import { describe } from '../lib/errors.js';
import { HostError } from './host.js';

export class Deferred {
  constructor() {
    this.promise = new Promise((resolve) => { this.resolve = resolve; });
  }
}

/** A failure carrying the catalogue's description. */
export class FlowError extends Error {
  constructor(source, code, detail, payment) {
    const d = describe(source, code, detail);
    super(d.message);
    this.info = d;
    this.payment = payment;
  }
}

export function sleep(ms, wake) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, Math.max(0, ms));
    wake?.then(() => { clearTimeout(t); resolve(); });
  });
}

export function asFlowError(e) {
  if (e instanceof FlowError) return e;
  if (e?.name === 'PluginError') return new FlowError(e.source === 'extension' ? 'extension' : 'plugin', e.code, e.message);
  if (e instanceof HostError) return new FlowError(e.source, e.code, e.detail);
  return new FlowError('extension', 'internal', String(e?.message ?? e));
}
