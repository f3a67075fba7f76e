// Tests of checkout.js with node's own test runner: `node --test shop-plugin/assets/`.
// The protocol's validation against the shared samples, the state machine of one payment,
// and pay()/detect()/retrieve() over a stand-in window with a stand-in extension that
// answers as the real content script does (docs/checkout-protocol.md).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const PurseCheckout = require("./checkout.js");
const { protocol } = PurseCheckout;
const samples = JSON.parse(
  readFileSync(new URL("../../schema/checkout-protocol.examples.json", import.meta.url), "utf8")
);

const ORIGIN = "https://shop.example";
const PAYMENT = {
  paymentId: "pay_3f2a9c01d4e5b6a7c8d9e0f1",
  clientSecret: "pay_3f2a9c01d4e5b6a7c8d9e0f1_secret_Zm9vYmFy",
  apiBase: "https://pay.shop.example/",
};

// ------------------------------------------------------------------ validation

test("every valid sample validates; every invalid one is refused with a reason", () => {
  for (const m of samples.valid) {
    assert.equal(protocol.validateMessage(m), null, JSON.stringify(m));
  }
  for (const { why, message } of samples.invalid) {
    assert.equal(typeof protocol.validateMessage(message), "string", `should refuse: ${why}`);
  }
});

test("a request names the payment only, and its client secret must be that payment's", () => {
  const m = protocol.requestMessage("pc_1", { id: "pay_ab", client_secret: "pay_ab_secret_x", api_base: "https://a.example" });
  assert.equal(protocol.validateMessage(m), null);
  assert.deepEqual(Object.keys(m.payment).sort(), ["api_base", "client_secret", "id"]);
  assert.equal(m.from, "page");
  const foreign = protocol.requestMessage("pc_1", { id: "pay_ab", client_secret: "pay_cd_secret_x", api_base: "https://a.example" });
  assert.match(protocol.validateMessage(foreign), /client secret/);
});

test("the plugin's base URL is taken from where checkout.js was loaded", () => {
  assert.equal(protocol.scriptBase("https://pay.shop.example/v1/checkout.js"), "https://pay.shop.example");
  assert.equal(protocol.scriptBase("http://127.0.0.1:8443/purse/v1/checkout.js?v=3"), "http://127.0.0.1:8443/purse");
  assert.equal(protocol.scriptBase("https://cdn.example/checkout.js"), null);
  assert.equal(protocol.scriptBase(undefined), null);
});

// ------------------------------------------------------------------ state machine

const ext = (type, fields) => ({ ns: "purse-checkout", v: 1, from: "extension", type, id: "pc_1", ...fields });
const payment = (status) => ({ id: "pay_ab", object: "payment", status });

function run(events) {
  let state = protocol.initialState("pc_1");
  const actions = [];
  for (const e of events) {
    const r = protocol.step(state, e);
    state = r.state;
    actions.push(...r.actions);
  }
  return { state, actions };
}

test("ack, progress, success: the result resolves and every timer is disarmed", () => {
  const { state, actions } = run([
    { kind: "message", message: ext("ack", { extension: { version: "1" }, versions: [1] }) },
    { kind: "message", message: ext("progress", { stage: "confirming" }) },
    { kind: "message", message: ext("success", { payment: payment("succeeded") }) },
    { kind: "message", message: ext("failure", { error: { code: "x", message: "late" } }) },
  ]);
  assert.equal(state.phase, "done");
  assert.deepEqual(actions, [
    { disarm: "ack_timeout" },
    { arm: "timeout" },
    { progress: { stage: "confirming", payment: undefined } },
    { disarm: "ack_timeout" },
    { disarm: "timeout" },
    { resolve: payment("succeeded") },
  ]);
});

test("no ack in time means the extension is missing", () => {
  const { actions } = run([{ kind: "ack_timeout" }]);
  assert.equal(actions.at(-1).reject.code, "extension_missing");
  assert.match(actions.at(-1).reject.message, /install the Purse browser extension/);
  // An ack that arrived first makes a late ack timer harmless.
  const acked = run([{ kind: "message", message: ext("ack", { extension: { version: "1" }, versions: [1] }) }, { kind: "ack_timeout" }]);
  assert.equal(acked.state.phase, "acked");
});

test("the overall timeout stops the extension and rejects, but not a running time-cycle", () => {
  const ack = { kind: "message", message: ext("ack", { extension: { version: "1" }, versions: [1] }) };
  const timedOut = run([ack, { kind: "timeout" }]);
  assert.equal(timedOut.actions.find((a) => a.post)?.post.type, "stop");
  assert.equal(timedOut.actions.at(-1).reject.code, "timeout");

  const running = run([ack, { kind: "message", message: ext("progress", { stage: "running", payment: payment("running") }) }, { kind: "timeout" }]);
  assert.equal(running.state.phase, "acked");
  assert.ok(running.actions.some((a) => a.disarm === "timeout"));
  assert.ok(!running.actions.some((a) => a.reject));
});

test("stopping before the ack cancels at once; after it, the extension's final word settles", () => {
  const early = run([{ kind: "abort" }]);
  assert.equal(early.actions[0].post.type, "stop");
  assert.equal(early.actions.at(-1).reject.code, "canceled");

  const ack = { kind: "message", message: ext("ack", { extension: { version: "1" }, versions: [1] }) };
  const late = run([ack, { kind: "abort" }, { kind: "abort" }]);
  assert.equal(late.state.phase, "acked");
  assert.equal(late.actions.filter((a) => a.post).length, 1, "one stop only");
  const done = protocol.step(late.state, { kind: "message", message: ext("success", { payment: payment("succeeded") }) });
  assert.deepEqual(done.actions.at(-1), { resolve: payment("succeeded") });
});

test("a version refusal says which side to update", () => {
  const older = run([{ kind: "message", message: ext("failure", { error: { code: "version_unsupported", message: "m", versions: [2, 3] } }) }]);
  assert.equal(older.actions.at(-1).reject.code, "checkout_outdated");
  const newer = run([{ kind: "message", message: ext("failure", { error: { code: "version_unsupported", message: "m", versions: [0] } }) }]);
  assert.equal(newer.actions.at(-1).reject.code, "extension_outdated");
});

test("messages for another payment, or from the page itself, change nothing", () => {
  const other = { ...ext("success", { payment: payment("succeeded") }), id: "pc_2" };
  const echo = { ...ext("success", { payment: payment("succeeded") }), from: "page" };
  const { state, actions } = run([{ kind: "message", message: other }, { kind: "message", message: echo }]);
  assert.equal(state.phase, "sent");
  assert.deepEqual(actions, []);
});

// ------------------------------------------------------------------ pay() over a window

/** A window stand-in: postMessage delivers asynchronously to every listener, as a
 *  browser does, with `source` and `origin` set. */
function fakeWindow(origin = ORIGIN) {
  const target = new EventTarget();
  const win = {
    location: { origin },
    addEventListener: (t, f) => target.addEventListener(t, f),
    removeEventListener: (t, f) => target.removeEventListener(t, f),
    setTimeout: (f, ms) => setTimeout(f, ms),
    clearTimeout: (t) => clearTimeout(t),
    posted: [],
    postMessage(data, targetOrigin) {
      assert.equal(targetOrigin, origin, "messages are posted to the page's own origin only");
      win.posted.push(data);
      win.deliver(structuredClone(data), win, origin);
    },
    deliver(data, source, from) {
      setImmediate(() => {
        const ev = new Event("message");
        Object.assign(ev, { data, source, origin: from });
        target.dispatchEvent(ev);
      });
    },
  };
  return win;
}

/** The extension's content script, as docs/checkout-protocol.md specifies it. `plan`
 *  maps a request to the messages that follow the ack. */
function fakeExtension(win, plan) {
  const seen = [];
  win.addEventListener("message", (ev) => {
    const m = ev.data;
    if (ev.source !== win || !m || m.ns !== "purse-checkout" || m.from !== "page") return;
    assert.equal(protocol.validateMessage(m), null, "checkout.js sends valid messages");
    seen.push(m);
    const reply = (type, fields) =>
      win.postMessage({ ns: "purse-checkout", v: 1, from: "extension", type, id: m.id, ...fields }, win.location.origin);
    if (m.type === "hello" || m.type === "request") reply("ack", { extension: { name: "Purse", version: "0.1.0" }, versions: [1] });
    if (m.type === "request" || m.type === "stop") for (const [type, fields] of plan(m)) reply(type, fields);
  });
  return seen;
}

test("pay() sends one request naming the payment and resolves with the plugin's payment", async () => {
  const win = fakeWindow();
  const paid = { id: PAYMENT.paymentId, object: "payment", status: "succeeded", charged: { units: 1, total: 1250 } };
  const seen = fakeExtension(win, (m) =>
    m.type === "request"
      ? [["progress", { stage: "confirming" }], ["progress", { stage: "processing" }], ["success", { payment: paid }]]
      : []
  );
  const stages = [];
  const pc = PurseCheckout.create(win);
  const result = await pc.pay({ ...PAYMENT, onProgress: (p) => stages.push(p.stage) });
  assert.deepEqual(result, paid);
  assert.deepEqual(stages, ["confirming", "processing"]);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0].payment, {
    id: PAYMENT.paymentId,
    client_secret: PAYMENT.clientSecret,
    api_base: "https://pay.shop.example",
  });
});

test("pay() without the extension rejects with extension_missing after the ack timeout", async () => {
  const win = fakeWindow();
  const pc = PurseCheckout.create(win);
  await assert.rejects(pc.pay({ ...PAYMENT, ackTimeoutMs: 20 }), (e) => {
    assert.ok(e instanceof PurseCheckout.PurseCheckoutError);
    assert.equal(e.code, "extension_missing");
    return true;
  });
});

test("pay() ignores look-alike messages from other windows and origins", async () => {
  const win = fakeWindow();
  const pc = PurseCheckout.create(win);
  const p = pc.pay({ ...PAYMENT, ackTimeoutMs: 50 });
  const id = win.posted[0].id;
  const forged = { ns: "purse-checkout", v: 1, from: "extension", type: "success", id, payment: { id: PAYMENT.paymentId, status: "succeeded" } };
  win.deliver(forged, { other: "frame" }, ORIGIN);
  win.deliver(forged, win, "https://evil.example");
  await assert.rejects(p, (e) => e.code === "extension_missing");
});

test("pay() reports a failure with the extension's code and sentence", async () => {
  const win = fakeWindow();
  fakeExtension(win, () => [["failure", { error: { code: "insufficient_funds", message: "Your card holds 1.00 EUR.", source: "plugin" } }]]);
  const pc = PurseCheckout.create(win);
  await assert.rejects(pc.pay(PAYMENT), (e) => e.code === "insufficient_funds" && e.message === "Your card holds 1.00 EUR." && e.source === "plugin");
});

test("pay() turns a malformed reply into protocol_error", async () => {
  const win = fakeWindow();
  fakeExtension(win, () => [["success", { payment: { id: "nope" } }]]);
  const pc = PurseCheckout.create(win);
  await assert.rejects(pc.pay(PAYMENT), (e) => e.code === "protocol_error");
});

test("aborting a running time-cycle sends stop; the extension's success settles it", async () => {
  const win = fakeWindow();
  const running = { id: PAYMENT.paymentId, status: "running" };
  const stopped = { id: PAYMENT.paymentId, status: "succeeded", charged: { units: 2, total: 100 } };
  const seen = fakeExtension(win, (m) =>
    m.type === "request" ? [["progress", { stage: "running", payment: running }]] : [["success", { payment: stopped }]]
  );
  const ctl = new AbortController();
  const pc = PurseCheckout.create(win);
  const result = await pc.pay({ ...PAYMENT, signal: ctl.signal, onProgress: (p) => p.stage === "running" && ctl.abort() });
  assert.deepEqual(result, stopped);
  assert.deepEqual(seen.map((m) => m.type), ["request", "stop"]);
  assert.equal(seen[1].id, seen[0].id, "stop names the request");
});

test("pay() refuses bad arguments before posting anything", async () => {
  const win = fakeWindow();
  const pc = PurseCheckout.create(win);
  for (const bad of [
    { ...PAYMENT, paymentId: "order-1" },
    { ...PAYMENT, clientSecret: "pay_other_secret_x" },
    { ...PAYMENT, apiBase: "ftp://x" },
  ]) {
    await assert.rejects(pc.pay(bad), (e) => e.code === "invalid_argument");
  }
  assert.equal(win.posted.length, 0);
});

test("detect() finds the extension, or answers null", async () => {
  const win = fakeWindow();
  fakeExtension(win, () => []);
  const found = await PurseCheckout.create(win).detect();
  assert.deepEqual(found, { extension: { name: "Purse", version: "0.1.0" }, versions: [1] });
  assert.equal(await PurseCheckout.create(fakeWindow()).detect({ timeoutMs: 20 }), null);
});

test("retrieve() GETs the shopper view with the client secret, and maps API errors", async () => {
  const win = fakeWindow();
  const calls = [];
  win.fetch = async (url, init) => {
    calls.push({ url, init });
    if (calls.length === 1) return { ok: true, status: 200, json: async () => ({ id: PAYMENT.paymentId, status: "created" }) };
    return { ok: false, status: 410, json: async () => ({ error: { code: "payment_expired", message: "expired" } }) };
  };
  const pc = PurseCheckout.create(win);
  assert.equal((await pc.retrieve(PAYMENT)).status, "created");
  assert.equal(
    calls[0].url,
    `https://pay.shop.example/v1/checkout/payments/${PAYMENT.paymentId}?client_secret=${PAYMENT.clientSecret}`
  );
  assert.equal(calls[0].init.credentials, "omit");
  await assert.rejects(pc.retrieve(PAYMENT), (e) => e.code === "payment_expired");
  win.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  await assert.rejects(pc.retrieve(PAYMENT), (e) => e.code === "network");
});
