// The confirmation window: the extension's own page (ui/confirm.html), opened as a
// separate browser window the shop's page cannot script. Views are pushed to it over
// a runtime port; the shopper's Pay / Cancel / Stop come back the same way.

import { ext } from './ext.js';

export class ConfirmWindows {
  constructor() {
    this.windows = new Map(); // flowId -> windowId
    this.ports = new Map(); // flowId -> Set of ports
    this.last = new Map(); // flowId -> last view (for a window that connects late)
    this.onClosed = () => {};
    ext.windows?.onRemoved.addListener((windowId) => {
      for (const [flowId, w] of this.windows) {
        if (w === windowId) {
          this.windows.delete(flowId);
          this.onClosed(flowId);
        }
      }
    });
  }

  async open(flowId) {
    const url = ext.runtime.getURL(`ui/confirm.html?flow=${encodeURIComponent(flowId)}`);
    const w = await ext.windows.create({ url, type: 'popup', width: 440, height: 640, focused: true });
    this.windows.set(flowId, w.id);
    return w.id;
  }

  /** A confirmation page connected (port name "purse-confirm"). */
  attach(flowId, port) {
    if (!this.ports.has(flowId)) this.ports.set(flowId, new Set());
    this.ports.get(flowId).add(port);
    port.onDisconnect.addListener(() => this.ports.get(flowId)?.delete(port));
    const v = this.last.get(flowId);
    if (v) port.postMessage({ type: 'view', view: v });
  }

  push(flowId, view) {
    this.last.set(flowId, view);
    for (const port of this.ports.get(flowId) ?? []) {
      try {
        port.postMessage({ type: 'view', view });
      } catch {
        // the window is closing
      }
    }
  }

  /** Forgets a finished flow (its window stays open on the result until closed). */
  forget(flowId) {
    this.ports.delete(flowId);
    this.windows.delete(flowId);
    // The last view stays so a late window still shows the result; keep a few only.
    if (this.last.size > 8) this.last.delete(this.last.keys().next().value);
  }

  async close(flowId) {
    const w = this.windows.get(flowId);
    this.windows.delete(flowId);
    if (w !== undefined) await ext.windows.remove(w).catch(() => {});
  }
}
