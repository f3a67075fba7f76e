// The background (Chromium: the MV3 service worker; Firefox: the background script):
// routes the pages' requests (through the content script) to the one payment flow that
// may run at a time, connects the confirmation window to its flow, answers the popup,
// and delivers kept card answers again at start and by alarm.

import { ext } from './ext.js';
import { ConfirmWindows } from './confirm-window.js';
import { deliverHeld, deliverPending } from './deliveries.js';
import { PaymentFlow } from './flow.js';
import { HostPort } from './host.js';
import { readHistory } from './card.js';
import { describe } from '../lib/errors.js';
import { senderOrigin } from '../lib/origin.js';
import { parsePageMessage, reply } from '../lib/page-protocol.js';
import { PendingStore } from '../lib/pending.js';
import { pluginClient } from '../lib/plugin-api.js';
import { request } from '../lib/native-protocol.js';

const log = (m) => console.info('[purse]', m);
const manifest = ext.runtime.getManifest();
const extensionInfo = { name: manifest.name, version: manifest.version };
const REDELIVER_ALARM = 'purse-redeliver';

const pending = new PendingStore({
  get: async (k) => (await ext.storage.local.get(k))[k],
  set: (k, v) => ext.storage.local.set({ [k]: v }),
});
const windows = new ConfirmWindows();
const flows = new Map(); // flowId -> PaymentFlow (the running one, and recent ones for late windows)
let current = null;
let flowCounter = 0;

windows.onClosed = (flowId) => flows.get(flowId)?.stop('window_closed');

// ------------------------------------------------------------------ pages

function pagePort(port) {
  if (!port.sender?.tab) {
    port.disconnect(); // pages speak through the content script only
    return;
  }
  const origin = senderOrigin(port.sender);
  const send = (m) => {
    try {
      port.postMessage(m);
    } catch {
      // the tab went away
    }
  };
  port.onMessage.addListener((raw) => {
    const parsed = parsePageMessage(raw);
    if (!parsed.ok) {
      if (parsed.id) send(reply.failure(parsed.id, { code: parsed.code, message: `${describe('extension', parsed.code).message} (${parsed.message})`, source: 'extension', versions: parsed.versions }));
      return;
    }
    const msg = parsed.msg;
    if (msg.type === 'hello') return send(reply.ack(msg.id, extensionInfo));
    if (msg.type === 'stop') {
      if (current && current.requestId === msg.id && current.pagePort === port) current.stop('canceled');
      return;
    }
    send(reply.ack(msg.id, extensionInfo));
    if (origin === null) {
      const d = describe('extension', 'insecure_origin');
      return send(reply.failure(msg.id, { code: d.code, message: `${d.message} ${d.action}`, source: 'extension' }));
    }
    if (current) {
      const d = describe('extension', 'busy');
      return send(reply.failure(msg.id, { code: d.code, message: `${d.message} ${d.action}`, source: 'extension' }));
    }
    startFlow(msg, origin, port, send);
  });
  port.onDisconnect.addListener(() => {
    if (current && current.pagePort === port) {
      current.toPage = () => {};
      current.stop('canceled'); // only before Pay; a payment under way finishes
    }
  });
}

function startFlow(msg, origin, port, send) {
  const flowId = `f${Date.now().toString(36)}${(flowCounter++).toString(36)}`;
  const flow = new PaymentFlow({
    flowId,
    requestId: msg.id,
    payment: msg.payment,
    pageOrigin: origin,
    toPage: send,
    makeHost: () => new HostPort(),
    plugin: pluginClient({ api: msg.payment.api, pageOrigin: origin, fetch: (...a) => fetch(...a) }),
    pending,
    ui: windows,
    extensionInfo,
    log,
    // On every payment, before it runs: the host's held answers go out first.
    collectHeld: (host) => deliverHeld({ pending, fetch: (...a) => fetch(...a), host, log }),
    onEnd: (f) => {
      if (current === f) current = null;
      windows.forget(f.flowId);
      log(`payment ${f.ref.id} ended: ${f.state}${Number.isFinite(f.facts.payMs) ? ` (Pay to paid ${Math.round(f.facts.payMs)} ms)` : ''}`);
      scheduleRedelivery();
    },
  });
  flow.pagePort = port;
  current = flow;
  flows.set(flowId, flow);
  if (flows.size > 8) flows.delete(flows.keys().next().value);
  log(`payment ${msg.payment.id} requested by ${origin}`);
  flow.run();
}

// ------------------------------------------------------------------ the confirmation window

function confirmPort(port) {
  if (!String(port.sender?.url ?? '').startsWith(ext.runtime.getURL('ui/confirm.html'))) {
    port.disconnect(); // only our own page drives a payment
    return;
  }
  let flow = null;
  port.onMessage.addListener((m) => {
    if (m?.type === 'attach') {
      flow = flows.get(m.flow) ?? null;
      if (!flow) return port.postMessage({ type: 'gone' });
      windows.attach(flow.flowId, port);
      port.postMessage({ type: 'view', view: flow.view() });
      return;
    }
    if (!flow) return;
    if (m?.type === 'pay') flow.pay();
    else if (m?.type === 'cancel') flow.stop('shopper_canceled');
    else if (m?.type === 'stop') flow.stop('shopper_canceled');
  });
}

// ------------------------------------------------------------------ the popup

async function popupStatus() {
  const out = { extension: extensionInfo, host: null, card: null, history: [], pending: 0, current: null, error: null };
  out.pending = Object.keys(await pending.all()).length;
  if (current) out.current = { state: current.state, origin: current.pageOrigin };
  const host = new HostPort();
  try {
    const h = await host.greet(`purse-extension ${extensionInfo.version}`);
    out.host = { version: h.version, protocol: h.protocol };
    const st = await host.call(request.status(), 5000);
    out.host.pcsc = st.pcsc;
    out.host.readers = st.readers;
    if (current) return out; // the card is busy with a payment: no history now
    const h2 = await readHistory(host);
    if (h2) {
      out.card = h2.card;
      out.history = h2.records;
    }
  } catch (e) {
    out.error = describe(e.source ?? 'extension', e.code ?? 'internal', e.detail);
  } finally {
    host.close();
  }
  return out;
}

ext.runtime.onMessage.addListener((m, sender, sendResponse) => {
  if (sender.id !== ext.runtime.id || !String(sender.url ?? '').startsWith(ext.runtime.getURL('ui/'))) return false;
  if (m?.type === 'popup-status') {
    popupStatus().then(sendResponse, (e) => sendResponse({ error: describe('extension', 'internal', e.message) }));
    return true;
  }
  if (m?.type === 'popup-deliver') {
    redeliver().then(sendResponse, (e) => sendResponse({ error: describe('extension', 'internal', e.message) }));
    return true;
  }
  return false;
});

// ------------------------------------------------------------------ kept answers

let delivering = null;
function redeliver() {
  delivering ??= deliverPending({ pending, fetch: (...a) => fetch(...a), makeHost: () => new HostPort(), busyWith: current?.ref.id ?? null, log })
    .finally(() => { delivering = null; scheduleRedelivery(); });
  return delivering;
}

async function scheduleRedelivery() {
  const left = Object.keys(await pending.all()).filter((id) => id !== current?.ref.id).length;
  if (!ext.alarms) return;
  if (left > 0) ext.alarms.create(REDELIVER_ALARM, { periodInMinutes: 1 });
  else await ext.alarms.clear(REDELIVER_ALARM);
}

ext.alarms?.onAlarm.addListener((a) => {
  if (a.name === REDELIVER_ALARM) redeliver();
});

ext.runtime.onConnect.addListener((port) => {
  if (port.name === 'purse-page') return pagePort(port);
  if (port.name === 'purse-confirm') return confirmPort(port);
  port.disconnect();
});

// At every start: what the shop has not acknowledged yet goes out again (the host's held
// answers of the kept payments first).
pending.all().then((all) => {
  if (Object.keys(all).length > 0) redeliver();
});

// For the end-to-end tests and debugging from the service worker's console.
globalThis.purse = { pending, current: () => current, redeliver };
