// The content script: a relay between the shop's page (window.postMessage, namespace
// "purse-checkout", from: "page") and the extension's background (a runtime port).
// It checks nothing but the envelope and never looks at amounts: the background
// validates every message (lib/page-protocol.js) and knows the page's origin from the
// browser, not from this script. A classic script (content scripts cannot be modules).
(() => {
  'use strict';
  const api = globalThis.browser ?? globalThis.chrome;
  const NS = 'purse-checkout';
  let port = null;

  function connect() {
    port = api.runtime.connect({ name: 'purse-page' });
    port.onMessage.addListener((m) => {
      if (m && m.ns === NS && m.from === 'extension') window.postMessage(m, window.location.origin);
    });
    port.onDisconnect.addListener(() => { port = null; });
  }

  window.addEventListener('message', (ev) => {
    if (ev.source !== window || ev.origin !== window.location.origin) return;
    const m = ev.data;
    if (!m || typeof m !== 'object' || m.ns !== NS || m.from !== 'page') return;
    if (port === null) connect();
    try {
      port.postMessage(m);
    } catch {
      // The background restarted: connect again once.
      connect();
      port.postMessage(m);
    }
  });
})();
