/*! checkout.js: pay with a purse card from a shop's page.
 *
 * Served by the shop plugin at GET /v1/checkout.js. Plain JavaScript, no dependencies.
 * It asks the purse browser extension to take the payment, over the window.postMessage
 * protocol of docs/checkout-protocol.md (namespace "purse-checkout", version 1), and
 * reads the payment from the plugin's shopper API (CORS).
 *
 *   const payment = await PurseCheckout.pay({ paymentId, clientSecret, onProgress });
 *
 * The page never handles amounts or card data: the extension loads the payment's terms
 * from the plugin itself, shows them in its own window, and talks to the card and the
 * plugin. The page learns the outcome; the shop's server learns it from its webhook
 * (trust that, not the page).
 *
 * The pure parts (message building and validation, the state machine of one payment)
 * are plain functions, exported for node's test runner when loaded as CommonJS.
 */
(function (root, factory) {
  "use strict";
  var api = factory(root);
  if (typeof module === "object" && module && module.exports) {
    module.exports = api;
  }
  if (root && typeof root.document === "object") {
    root.PurseCheckout = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : this, function (root) {
  "use strict";

  /** The protocol's namespace and the one version this script speaks. */
  const NS = "purse-checkout";
  const VERSION = 1;

  const PAGE_TYPES = ["hello", "request", "stop"];
  const EXTENSION_TYPES = ["ack", "progress", "success", "failure"];
  const STAGES = ["confirming", "waiting_for_card", "processing", "running", "stopping", "recovering"];
  const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const CODE_RE = /^[a-z][a-z0-9_]{0,63}$/;
  const PAYMENT_ID_RE = /^pay_[A-Za-z0-9]{1,64}$/;
  const SECRET_TAIL_RE = /^[A-Za-z0-9_-]+$/;
  const STATUSES = ["created", "authorized", "running", "succeeded", "failed", "canceled", "expired"];
  const SOURCES = ["plugin", "host", "extension", "page"];

  /** Defaults (milliseconds). The extension answers a request at once ("ack"); what
   *  follows waits for the shopper, so only an upper bound applies until a time-cycle
   *  is running (it then runs as long as the shopper lets it). */
  const DEFAULTS = { ackTimeoutMs: 2000, timeoutMs: 10 * 60 * 1000 };

  /** Sentences for the codes a page may see, when the extension sent none. */
  const MESSAGES = {
    extension_missing:
      "To pay with your purse card, install the Purse browser extension and reload this page.",
    timeout: "The purse extension did not finish in time. If your card was charged, the shop will still see the payment.",
    canceled: "The payment was canceled.",
    shopper_canceled: "You canceled the payment. Nothing was charged.",
    busy: "Another purse payment is in progress in this browser. Finish it first.",
    insecure_origin: "The purse extension pays only on secure (https) pages.",
    extension_outdated: "Update the Purse browser extension to pay on this shop.",
    checkout_outdated: "This shop's checkout is older than your purse extension; please tell the shop.",
    delivery_pending:
      "Your card has paid; the confirmation will reach the shop as soon as the connection returns. Do not pay again.",
    invalid_argument: "The shop's page started the payment incorrectly.",
    protocol_error: "The purse extension sent a message this page does not understand.",
    network: "The shop's payment service could not be reached. Check your connection.",
  };

  // ---------------------------------------------------------------- messages

  function isObject(v) {
    return typeof v === "object" && v !== null && !Array.isArray(v);
  }

  function isHttpUrl(s) {
    return typeof s === "string" && /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(s);
  }

  /** A message of this protocol from the page (`from: "page"`). */
  function pageMessage(type, id, fields) {
    return Object.assign({ ns: NS, v: VERSION, from: "page", type: type, id: id }, fields || {});
  }

  /** The `request` that starts a payment: only what identifies it, never its terms. */
  function requestMessage(id, payment) {
    return pageMessage("request", id, {
      payment: { id: payment.id, client_secret: payment.client_secret, api_base: payment.api_base },
    });
  }

  function isVersionList(v) {
    return Array.isArray(v) && v.every(function (x) { return Number.isInteger(x) && x >= 1; });
  }

  function checkPayment(p) {
    if (!isObject(p)) return "payment must be an object";
    if (typeof p.id !== "string" || !PAYMENT_ID_RE.test(p.id)) return "payment.id must be a payment id (pay_…)";
    if (STATUSES.indexOf(p.status) < 0) return "payment.status must be one of " + STATUSES.join(", ");
    return null;
  }

  function checkError(e) {
    if (!isObject(e)) return "error must be an object";
    if (typeof e.code !== "string" || !CODE_RE.test(e.code)) return "error.code must be a snake_case code";
    if (typeof e.message !== "string" || e.message.length === 0) return "error.message must be a sentence";
    if (e.source !== undefined && SOURCES.indexOf(e.source) < 0) return "error.source must be one of " + SOURCES.join(", ");
    if (e.versions !== undefined && !isVersionList(e.versions)) return "error.versions must list protocol versions";
    return null;
  }

  /** Whether `secret` has the form of payment `id`'s client secret. */
  function isSecretOf(secret, id) {
    return typeof secret === "string" && secret.indexOf(id + "_secret_") === 0 && SECRET_TAIL_RE.test(secret.slice(id.length + 8));
  }

  /** Checks a message against protocol v1 (the same rules as
   *  schema/checkout-protocol.schema.json). Returns null when valid, else why not. */
  function validateMessage(m) {
    if (!isObject(m)) return "a message is an object";
    if (m.ns !== NS) return "ns must be '" + NS + "'";
    if (m.v !== VERSION) return "v must be " + VERSION;
    if (typeof m.id !== "string" || !ID_RE.test(m.id)) return "id must be 1 to 64 letters, digits, '_' or '-'";
    if (m.from === "page") {
      if (PAGE_TYPES.indexOf(m.type) < 0) return "a page sends " + PAGE_TYPES.join(", ");
      if (m.type === "request") {
        const p = m.payment;
        if (!isObject(p)) return "request.payment is required";
        if (typeof p.id !== "string" || !PAYMENT_ID_RE.test(p.id)) return "payment.id must be a payment id (pay_…)";
        if (!isSecretOf(p.client_secret, p.id))
          return "payment.client_secret must be the payment's client secret";
        if (!isHttpUrl(p.api_base)) return "payment.api_base must be an http(s) URL";
      }
      return null;
    }
    if (m.from === "extension") {
      if (EXTENSION_TYPES.indexOf(m.type) < 0) return "an extension sends " + EXTENSION_TYPES.join(", ");
      switch (m.type) {
        case "ack":
          if (!isObject(m.extension) || typeof m.extension.version !== "string")
            return "ack.extension.version is required";
          if (!isVersionList(m.versions) || m.versions.length === 0)
            return "ack.versions must list protocol versions";
          return null;
        case "progress":
          if (STAGES.indexOf(m.stage) < 0) return "progress.stage must be one of " + STAGES.join(", ");
          return m.payment === undefined ? null : checkPayment(m.payment);
        case "success":
          return checkPayment(m.payment);
        case "failure": {
          const e = checkError(m.error);
          if (e) return e;
          return m.payment === undefined ? null : checkPayment(m.payment);
        }
      }
    }
    return "from must be 'page' or 'extension'";
  }

  // ---------------------------------------------------------------- errors

  class PurseCheckoutError extends Error {
    constructor(code, message, details) {
      super(message || MESSAGES[code] || code);
      this.name = "PurseCheckoutError";
      this.code = code;
      if (details && details.payment) this.payment = details.payment;
      if (details && details.versions) this.versions = details.versions;
      if (details && details.source) this.source = details.source;
    }
  }

  /** The page-side error of an extension's `failure`: a version refusal becomes the
   *  advice of which side to update. */
  function failureError(m) {
    const e = m.error;
    let code = e.code;
    let message = e.message;
    if (code === "version_unsupported" && Array.isArray(e.versions)) {
      const newer = e.versions.every(function (v) { return v > VERSION; });
      code = newer ? "checkout_outdated" : "extension_outdated";
      message = MESSAGES[code];
    }
    return {
      code: code,
      message: message || MESSAGES[code] || code,
      payment: m.payment,
      versions: e.versions,
      source: e.source,
    };
  }

  // ---------------------------------------------------------------- one payment

  /** The state of one `pay()`: sent (awaiting the ack) → acked → done. */
  function initialState(id) {
    return { id: id, phase: "sent", stopping: false, running: false };
  }

  /**
   * The state machine of one payment, pure: `event` is one of
   *   {kind: "message", message}   a valid protocol message addressed to this payment
   *   {kind: "ack_timeout"}        no ack in time
   *   {kind: "timeout"}            no result in time
   *   {kind: "abort"}              the page asked to stop
   * Returns {state, actions}; actions are what the glue does, in order:
   *   {post: message} {progress: {stage, payment}} {resolve: payment} {reject: error}
   *   {arm: "timeout"} {disarm: "ack_timeout"|"timeout"}
   */
  function step(state, event) {
    const s = Object.assign({}, state);
    const actions = [];
    if (s.phase === "done") return { state: s, actions: actions };
    const finish = function (a) {
      s.phase = "done";
      actions.push({ disarm: "ack_timeout" }, { disarm: "timeout" }, a);
    };
    const acked = function () {
      if (s.phase === "sent") {
        s.phase = "acked";
        actions.push({ disarm: "ack_timeout" }, { arm: "timeout" });
      }
    };
    switch (event.kind) {
      case "message": {
        const m = event.message;
        if (m.from !== "extension" || m.id !== s.id) break;
        if (m.type === "ack") acked();
        else if (m.type === "progress") {
          acked();
          if (m.stage === "running" && !s.running) {
            // A running time-cycle lasts as long as the shopper lets it.
            s.running = true;
            actions.push({ disarm: "timeout" });
          }
          actions.push({ progress: { stage: m.stage, payment: m.payment } });
        } else if (m.type === "success") finish({ resolve: m.payment });
        else if (m.type === "failure") finish({ reject: failureError(m) });
        break;
      }
      case "ack_timeout":
        if (s.phase === "sent") {
          finish({ reject: { code: "extension_missing", message: MESSAGES.extension_missing } });
        }
        break;
      case "timeout":
        if (s.phase === "acked" && !s.running) {
          actions.push({ post: pageMessage("stop", s.id) });
          finish({ reject: { code: "timeout", message: MESSAGES.timeout } });
        }
        break;
      case "abort":
        if (s.phase === "sent") {
          actions.push({ post: pageMessage("stop", s.id) });
          finish({ reject: { code: "canceled", message: MESSAGES.canceled } });
        } else if (!s.stopping) {
          // The extension ends it: before the shopper's Pay it cancels; a running
          // time-cycle stops and succeeds with the units charged; a debit under way
          // finishes. Its final message settles the promise.
          s.stopping = true;
          actions.push({ post: pageMessage("stop", s.id) });
        }
        break;
    }
    return { state: s, actions: actions };
  }

  // ---------------------------------------------------------------- glue

  function randomId() {
    const c = root && root.crypto;
    if (c && typeof c.getRandomValues === "function") {
      const b = new Uint8Array(12);
      c.getRandomValues(b);
      return "pc_" + Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
    }
    return "pc_" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  /** The plugin's base URL: the origin checkout.js was loaded from. */
  function scriptBase(src) {
    const m = typeof src === "string" ? /^(https?:\/\/[^/?#]+)(\/[^?#]*)?\/v1\/checkout\.js(?:[?#].*)?$/.exec(src) : null;
    return m ? m[1] + (m[2] || "") : null;
  }

  const loadedFrom =
    root && root.document && root.document.currentScript ? scriptBase(root.document.currentScript.src) : null;

  function normaliseOptions(opts) {
    if (!isObject(opts)) throw new PurseCheckoutError("invalid_argument", "pay() takes an options object");
    const apiBase = (opts.apiBase || loadedFrom || "").replace(/\/+$/, "");
    const paymentId = opts.paymentId;
    const clientSecret = opts.clientSecret;
    if (typeof paymentId !== "string" || !PAYMENT_ID_RE.test(paymentId))
      throw new PurseCheckoutError("invalid_argument", "paymentId must be the payment's id (pay_…)");
    if (!isSecretOf(clientSecret, paymentId))
      throw new PurseCheckoutError("invalid_argument", "clientSecret must be the client secret of payment " + paymentId);
    if (!isHttpUrl(apiBase))
      throw new PurseCheckoutError("invalid_argument", "apiBase must be the payment service's http(s) URL");
    return { paymentId: paymentId, clientSecret: clientSecret, apiBase: apiBase };
  }

  /**
   * Builds the API over a window (the real one in a browser; a stand-in in tests).
   * `win` needs postMessage, addEventListener/removeEventListener, location.origin,
   * setTimeout/clearTimeout, and fetch for `retrieve`.
   */
  function create(win) {
    const timers = {
      set: function (f, ms) { return (win.setTimeout || setTimeout).call(win, f, ms); },
      clear: function (t) { return (win.clearTimeout || clearTimeout).call(win, t); },
    };

    function post(message) {
      win.postMessage(message, win.location.origin);
    }

    /** Messages from the extension's content script: same window, same origin, ours. */
    function listen(onMessage) {
      const handler = function (ev) {
        if (ev.source !== win || ev.origin !== win.location.origin) return;
        const m = ev.data;
        if (!isObject(m) || m.ns !== NS || m.from !== "extension") return;
        onMessage(m);
      };
      win.addEventListener("message", handler);
      return function () { win.removeEventListener("message", handler); };
    }

    /**
     * Pays a payment the shop's server created.
     * options: paymentId, clientSecret, apiBase (default: where checkout.js came from),
     *   onProgress({stage, payment}), signal (an AbortSignal: stop), ackTimeoutMs,
     *   timeoutMs (0: none).
     * Resolves with the payment as the plugin reported it (status "succeeded"); rejects
     * with a PurseCheckoutError {code, message, payment?}.
     */
    function pay(options) {
      return new Promise(function (resolve, reject) {
        let o;
        try {
          o = normaliseOptions(options);
        } catch (e) {
          reject(e);
          return;
        }
        const id = randomId();
        const ackTimeoutMs = options.ackTimeoutMs !== undefined ? options.ackTimeoutMs : DEFAULTS.ackTimeoutMs;
        const timeoutMs = options.timeoutMs !== undefined ? options.timeoutMs : DEFAULTS.timeoutMs;
        let state = initialState(id);
        const armed = {};
        let unlisten = function () {};
        let onAbort = null;

        const arm = function (name, ms) {
          if (ms > 0) armed[name] = timers.set(function () { dispatch({ kind: name }); }, ms);
        };
        const disarm = function (name) {
          if (armed[name] !== undefined) {
            timers.clear(armed[name]);
            delete armed[name];
          }
        };
        const cleanup = function () {
          unlisten();
          if (onAbort && options.signal) options.signal.removeEventListener("abort", onAbort);
        };

        function dispatch(event) {
          const r = step(state, event);
          state = r.state;
          r.actions.forEach(function (a) {
            if (a.post) post(a.post);
            else if (a.arm) arm(a.arm, timeoutMs);
            else if (a.disarm) disarm(a.disarm);
            else if (a.progress && typeof options.onProgress === "function") {
              try {
                options.onProgress(a.progress);
              } catch (_) {
                /* the page's handler must not break the payment */
              }
            } else if ("resolve" in a) {
              cleanup();
              resolve(a.resolve);
            } else if (a.reject) {
              cleanup();
              reject(new PurseCheckoutError(a.reject.code, a.reject.message, a.reject));
            }
          });
        }

        unlisten = listen(function (m) {
          if (m.id !== id) return;
          const why = validateMessage(m);
          if (why) {
            dispatch({
              kind: "message",
              message: { from: "extension", id: id, type: "failure", error: { code: "protocol_error", message: MESSAGES.protocol_error + " (" + why + ")" } },
            });
            return;
          }
          dispatch({ kind: "message", message: m });
        });
        if (options.signal) {
          if (options.signal.aborted) {
            cleanup();
            reject(new PurseCheckoutError("canceled"));
            return;
          }
          onAbort = function () { dispatch({ kind: "abort" }); };
          options.signal.addEventListener("abort", onAbort);
        }
        arm("ack_timeout", ackTimeoutMs);
        post(requestMessage(id, { id: o.paymentId, client_secret: o.clientSecret, api_base: o.apiBase }));
      });
    }

    /** Whether the extension is there: resolves {extension, versions} or null. */
    function detect(options) {
      const ms = (options && options.timeoutMs) || DEFAULTS.ackTimeoutMs;
      return new Promise(function (resolve) {
        const id = randomId();
        let timer;
        const unlisten = listen(function (m) {
          if (m.id !== id || m.type !== "ack" || validateMessage(m)) return;
          timers.clear(timer);
          unlisten();
          resolve({ extension: m.extension, versions: m.versions });
        });
        timer = timers.set(function () {
          unlisten();
          resolve(null);
        }, ms);
        post(pageMessage("hello", id));
      });
    }

    /** The payment as the plugin's shopper API shows it (one GET, CORS). */
    async function retrieve(options) {
      const o = normaliseOptions(options);
      const url =
        o.apiBase + "/v1/checkout/payments/" + encodeURIComponent(o.paymentId) +
        "?client_secret=" + encodeURIComponent(o.clientSecret);
      let r;
      try {
        r = await win.fetch(url, { method: "GET", mode: "cors", credentials: "omit", cache: "no-store" });
      } catch (e) {
        throw new PurseCheckoutError("network", MESSAGES.network);
      }
      let body = null;
      try {
        body = await r.json();
      } catch (_) {
        /* handled below */
      }
      if (!r.ok) {
        const e = body && body.error;
        throw new PurseCheckoutError(
          (e && e.code) || "http_" + r.status,
          (e && e.message) || "the payment service answered " + r.status
        );
      }
      if (checkPayment(body)) throw new PurseCheckoutError("protocol_error", "the payment service sent no payment");
      return body;
    }

    return { pay: pay, detect: detect, retrieve: retrieve };
  }

  const api = {
    version: VERSION,
    PurseCheckoutError: PurseCheckoutError,
    messages: MESSAGES,
    create: create,
    protocol: {
      NS: NS,
      VERSION: VERSION,
      STAGES: STAGES,
      pageMessage: pageMessage,
      requestMessage: requestMessage,
      validateMessage: validateMessage,
      initialState: initialState,
      step: step,
      scriptBase: scriptBase,
    },
  };
  if (root && typeof root.postMessage === "function" && root.location) {
    const bound = create(root);
    api.pay = bound.pay;
    api.detect = bound.detect;
    api.retrieve = bound.retrieve;
  }
  return Object.freeze(api);
});
