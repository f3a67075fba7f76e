// The native host as a test client speaks to it: the built binary on pipes, with the
// native-messaging framing (32-bit little-endian length, UTF-8 JSON). Used to wait for
// the card and read its balance, exactly as the extension does.

import { spawn } from 'node:child_process';

export class HostClient {
  constructor(bin, env) {
    this.child = spawn(bin, [], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'ignore'] });
    this.buf = Buffer.alloc(0);
    this.waiting = new Map();
    this.next = 1;
    this.child.stdout.on('data', (c) => this.data(c));
    // A host that exits fails every call still waiting (instead of leaving it hanging);
    // a write to a host that is gone is reported by that, not as an uncaught EPIPE.
    this.exited = null;
    this.child.stdin.on('error', () => {});
    this.child.on('exit', (code, sig) => {
      this.exited = `the native host exited (${code ?? sig})`;
      for (const w of this.waiting.values()) w({ type: 'error', code: 'host_exited', detail: this.exited });
      this.waiting.clear();
    });
  }

  data(c) {
    this.buf = Buffer.concat([this.buf, c]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (this.buf.length < 4 + len) return;
      const m = JSON.parse(this.buf.subarray(4, 4 + len).toString('utf8'));
      this.buf = this.buf.subarray(4 + len);
      const w = this.waiting.get(m.id);
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      }
    }
  }

  call(req) {
    const id = this.next++;
    const body = Buffer.from(JSON.stringify({ ...req, id }));
    const head = Buffer.alloc(4);
    head.writeUInt32LE(body.length);
    if (this.exited) return Promise.resolve({ type: 'error', code: 'host_exited', detail: this.exited });
    const reply = new Promise((resolve) => this.waiting.set(id, resolve));
    this.child.stdin.write(Buffer.concat([head, body]));
    return reply;
  }

  /** The card in the reader (SELECT), or throws with the host's error code. */
  async card() {
    const r = await this.call({ type: 'card_info' });
    if (r.type !== 'card_info') throw Object.assign(new Error(`card_info: ${r.code}: ${r.detail}`), { code: r.code });
    return r.card;
  }

  /** Waits until a card is present (or absent). */
  async waitCard(present, timeoutMs = 15000) {
    const r = await this.call({ type: 'wait_card', present, timeout_ms: timeoutMs });
    if (r.type !== 'card_event') throw new Error(`wait_card(${present}): ${r.code}: ${r.detail}`);
    return r;
  }

  close() {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', resolve);
      this.child.stdin.end();
    });
  }
}
