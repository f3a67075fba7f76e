// The purse payment page: hands the payment to the purse extension through the shop
// plugin's checkout.js, then goes to the return page, where pretix's server reads the
// outcome from the shop plugin (the page's word is never taken for it).
"use strict";
(function () {
  const box = document.getElementById("purse-pay");
  if (!box) return;
  const button = document.getElementById("purse-pay-button");
  const status = document.getElementById("purse-status");
  const missing = document.getElementById("purse-missing");
  const d = box.dataset;

  function show(text, stage) {
    status.textContent = text;
    status.dataset.stage = stage || "";
  }

  if (typeof window.PurseCheckout === "undefined") {
    show("The purse payment service cannot be reached. Please try again later.", "error");
    button.disabled = true;
    return;
  }

  window.PurseCheckout.detect().then(function (found) {
    if (!found) missing.hidden = false;
  });

  button.addEventListener("click", async function () {
    button.disabled = true;
    try {
      await window.PurseCheckout.pay({
        paymentId: d.paymentId,
        clientSecret: d.clientSecret,
        apiBase: d.apiBase,
        onProgress: function (p) { show(p.stage, p.stage); },
      });
      show("Paid. Checking with the shop…", "done");
      window.location.assign(d.returnUrl);
    } catch (e) {
      show(e && e.message ? e.message : String(e), "error");
      status.dataset.error = (e && e.code) || "error";
      // Outcomes the shop must see (the card paid, or the payment ended) are settled on
      // the return page, which asks the shop plugin.
      const settled = ["delivery_pending", "card_declined", "not_debited", "payment_expired",
                       "payment_not_waiting"];
      if (e && settled.indexOf(e.code) >= 0) {
        window.location.assign(d.returnUrl);
        return;
      }
      button.disabled = false;
    }
  });
})();
