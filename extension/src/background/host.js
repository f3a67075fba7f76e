// One connection to the purse native host (runtime.connectNative): numbered requests,
// each answered by the reply carrying its id or by a timeout; events (no id) go to a
// listener; a lost connection fails every open request with host_disconnected, or
// host_not_installed when the browser could not start the host at all. The messages
// themselves are lib/native-protocol.js.

import { ext } from './ext.js';
import { HOST_NAME, interpret, isNotInstalled, mismatchProblem, request, versionProblem } from '../lib/native-protocol.js';

export class HostError extends Error {
  constructor(code, message, detail = '') {
    super(message || code);
    this.name = 'HostError';
    this.code = code;
    this.source = code === 'host_not_installed' || code === 'host_disconnected' || code === 'host_outdated' || code === 'extension_outdated' ? 'extension' : 'host';
    this.detail = detail;
  }
}

/** Errors after which a card command's answer may have been lost (the card may have acted). */
export const LOST_ANSWER_CODES = new Set(['card_removed', 'card_error', 'timeout', 'no_card', 'host_disconnected', 'no_pcsc_service', 'no_reader', 'internal']);

export class HostPort {
  constructor(name = HOST_NAME) {
    this.name = name;
    this.port = null;
    this.nextId = 1;
    this.waiting = new Map();
    this.listeners = new Set();
    this.closed = false;
    this.hello = null;
  }

  connect() {
    if (this.port) return;
    const port = ext.runtime.connectNative(this.name);
    this.port = port;
    port.onMessage.addListener((m) => this.received(m));
    port.onDisconnect.addListener((p) => {
      const why = ext.runtime.lastError?.message ?? p?.error?.message ?? '';
      const code = isNotInstalled(why) ? 'host_not_installed' : 'host_disconnected';
      this.port = null;
      for (const [, w] of this.waiting) w.reject(new HostError(code, '', why));
      this.waiting.clear();
      for (const l of this.listeners) l({ type: 'disconnected', code, detail: why });
    });
  }

  received(m) {
    if (m && m.id !== undefined && this.waiting.has(m.id)) {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w.resolve(m);
      return;
    }
    for (const l of this.listeners) l(m);
  }

  /** Events without an id (e.g. session_closed when the card leaves). */
  onEvent(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends a request and waits for its reply; throws HostError for an error reply. */
  async call(req, timeoutMs = 15000) {
    if (this.closed) throw new HostError('host_disconnected', 'the connection to the host was closed');
    this.connect();
    const id = this.nextId++;
    const reply = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new HostError('timeout', '', `no reply to ${req.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      try {
        this.port.postMessage({ ...req, id });
      } catch (e) {
        this.waiting.delete(id);
        clearTimeout(timer);
        reject(new HostError('host_disconnected', '', String(e?.message ?? e)));
      }
    });
    const r = interpret(req, reply);
    if (!r.ok) throw new HostError(r.error.code, r.error.message, r.error.detail);
    return r.reply;
  }

  /** hello + the version check; remembers the host's answer. */
  async greet(client) {
    if (this.hello) return this.hello;
    const h = await this.call(request.hello(client), 5000).catch((e) => {
      // A host that refuses our protocol version answers version_mismatch, naming its own.
      if (e.code === 'version_mismatch') throw new HostError(mismatchProblem(e.detail), e.message, e.detail);
      throw e;
    });
    const problem = versionProblem(h);
    if (problem) throw new HostError(problem, '', `host ${h.host ?? ''} ${h.version ?? ''} speaks ${JSON.stringify(h.supported)}`);
    this.hello = h;
    return h;
  }

  close() {
    this.closed = true;
    if (this.port) {
      try {
        this.port.disconnect();
      } catch {
        // already gone
      }
      this.port = null;
    }
    for (const [, w] of this.waiting) w.reject(new HostError('host_disconnected', 'closed'));
    this.waiting.clear();
  }
}
