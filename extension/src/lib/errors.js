// The error catalogue: every error code the native host, the payment service (shop
// plugin) and the extension itself can produce, as a sentence the shopper understands
// and what to do about it. One place, so every screen says the same thing.

const HOST = {
  // The native host's catalogue (native-host/src/catalogue.rs, schema/native-messaging.schema.json).
  no_pcsc_service: ['The card reader service of this computer (pcscd) is not running.', 'Start the smart-card service (on Debian/Ubuntu: install and start pcscd), then try again.'],
  no_reader: ['No card reader is connected.', 'Connect your card reader, then try again.'],
  no_card: ['There is no purse card in the reader.', 'Insert your purse card into the reader.'],
  card_removed: ['The card left the reader before the payment was finished.', 'Put your purse card back into the reader: the extension checks with the card whether anything was charged.'],
  unsupported_card: ['The card in the reader is not a purse card that can pay here.', 'Insert your purse card instead.'],
  timeout: ['The card reader did not answer in time.', 'Check the reader and the card, then try again.'],
  busy: ['Another purse payment is in progress (in this browser or on this card reader).', 'Finish or cancel the other payment first: only one payment runs at a time.'],
  user_cancelled: ['The payment was cancelled.', 'Nothing more will be charged.'],
  amount_mismatch: ['The shop asked your card for a different amount than the one you confirmed. It was blocked and nothing was charged for it.', 'Do not pay this shop again before you have checked the order with it.'],
  currency_mismatch: ['Your card holds a different currency than the payment asks for.', 'Insert a purse card in the payment\'s currency.'],
  cap_exceeded: ['The shop asked for more than you confirmed. It was blocked and nothing more was charged.', 'Check the payment with the shop before paying it again.'],
  too_early: ['The shop asked your card for the next period before it was due. It was blocked and nothing was charged for it.', 'Nothing to do: the next period is charged when it is due, or stop the payment.'],
  proof_not_allowed: ['The shop asked to read a record of your card that is not this payment\'s (your card\'s history with other shops is private). It was blocked.', 'Nothing was charged or shown to the shop. Contact the shop if this happens again.'],
  command_not_allowed: ['The shop sent your card a command that is not part of a purse payment. It was blocked.', 'Nothing was charged. Contact the shop if this happens again.'],
  version_mismatch: ['The browser extension and the card reader program (purse native host) do not match.', 'Update both the extension and the purse native host to their latest versions.'],
  no_session: ['The card reader program had no payment open.', 'Try the payment again.'],
  card_error: ['The card reader could not talk to the card.', 'Check the card and the reader (take the card out and insert it again), then try again.'],
  bad_frame: ['The extension\'s message to the card reader program arrived cut off or garbled.', 'Try again; if it happens again, update the extension and the purse native host.'],
  message_too_large: ['The extension\'s message to the card reader program was too large.', 'Update the extension and the purse native host to their latest versions.'],
  invalid_json: ['The card reader program could not read the extension\'s message.', 'Update the extension and the purse native host to their latest versions.'],
  invalid_request: ['The card reader program found the extension\'s request incomplete or wrong.', 'Update the extension and the purse native host to their latest versions.'],
  unknown_command: ['The card reader program does not know a request of this extension.', 'Update the purse native host to its latest version.'],
  internal: ['Something went wrong in the card reader program on this computer.', 'Try again; if it happens again, restart the browser.'],
};

const PLUGIN = {
  // The shop plugin's shopper API (schema/openapi.yaml).
  insufficient_funds: ['There is not enough money on the card for this payment.', 'Load your card, or insert another purse card.'],
  wrong_currency: ['The card holds a currency this shop does not take.', 'Insert a purse card in the shop\'s currency.'],
  card_not_accepted: ['This shop does not accept this card (its key version).', 'Use another purse card, or ask your card issuer for a new card.'],
  card_refused: ['The card refused to start the payment.', 'Take the card out, insert it again and retry; if it still fails, contact your card issuer.'],
  card_blocked: ['The card issuer has blocked this card (it is on the clearing office\'s hotlist), so nothing was charged.', 'Contact your card issuer; pay with another purse card.'],
  card_answer_invalid: ['The card\'s answer could not be verified, so nothing was charged.', 'Take the card out, insert it again and retry.'],
  card_declined: ['The card declined the debit; nothing was charged.', 'Try again, or insert another purse card.'],
  not_debited: ['The check after the interruption found that the card was not charged.', 'Nothing was charged. Start the payment again from the shop if you still want to buy.'],
  payment_expired: ['This payment expired before it was paid.', 'Go back to the shop and start the checkout again.'],
  payment_not_waiting: ['This payment is no longer waiting to be paid.', 'Reload the shop\'s page to see its status.'],
  invalid_client_secret: ['The shop\'s page did not identify this payment correctly.', 'Reload the shop\'s page and start the checkout again.'],
  client_secret_required: ['The shop\'s page did not identify this payment correctly.', 'Reload the shop\'s page and start the checkout again.'],
  origin_not_allowed: ['The payment service refused this extension\'s request (origin not allowed).', 'Tell the shop: its payment service must allow the purse extension.'],
  not_found: ['The payment service does not know this payment.', 'Reload the shop\'s page and start the checkout again.'],
  nothing_in_flight: ['The payment service expected no card answer now.', 'Reload the shop\'s page to see the payment\'s status.'],
  recovery_required: ['A card answer of this payment was lost; the payment must be checked with the card.', 'Keep the card in the reader: the extension checks it now.'],
  nothing_to_recover: ['The payment service has nothing to check on this card.', 'Nothing to do.'],
  answer_required: ['A card step is still in progress.', 'Wait a moment, then press Stop again.'],
  not_running: ['This time-cycle payment is not running.', 'Nothing to do: reload the shop\'s page to see its status.'],
  not_time_cycle: ['This payment is not a time-cycle payment.', 'Reload the shop\'s page.'],
  wrong_state: ['The payment service is in a state that does not allow this step.', 'Reload the shop\'s page to see the payment\'s status.'],
  sam_exhausted: ['The shop\'s payment module can take no more payments.', 'Tell the shop; pay another way for now.'],
  storage_unavailable: ['The shop\'s payment service cannot store data right now; nothing was charged by this step.', 'Try again in a few minutes.'],
  invalid_request: ['The request was not understood.', 'Reload the shop\'s page; if it happens again, update the extension.'],
  request_timeout: ['The payment service did not receive the request in time.', 'Check your Internet connection; anything the card answered is kept and sent again automatically.'],
  unknown_parameter: ['The request was not understood.', 'Reload the shop\'s page; if it happens again, update the extension.'],
  invalid_cursor: ['The request was not understood.', 'Reload the shop\'s page.'],
  invalid_json: ['The request was not understood.', 'Update the extension to its latest version.'],
  invalid_apdu: ['The card\'s answer was malformed.', 'Take the card out, insert it again and retry.'],
  invalid_order: ['The shop\'s order cannot be paid with a purse card.', 'Contact the shop.'],
  body_too_large: ['The request was too large for the payment service.', 'Update the extension to its latest version.'],
  method_not_allowed: ['The payment service does not offer this step.', 'Update the extension to its latest version.'],
  unauthorized: ['The payment service refused the request.', 'Reload the shop\'s page and start the checkout again.'],
  currency_not_supported: ['The shop does not take this currency.', 'Contact the shop.'],
  idempotency_key_reused: ['The shop created this payment twice with different terms.', 'Reload the shop\'s page and start the checkout again.'],
  payment_not_cancelable: ['The payment can no longer be cancelled: the card was already asked to pay.', 'Wait for the result.'],
  // The shop's own settlement (a day's batch corrected after the clearing office refused a
  // record): never a shopper's step, but explained should it ever reach one.
  not_correctable: ['The shop\'s payment service could not correct its day\'s batch.', 'Nothing to do for you; the shop must resolve it with its clearing office.'],
  clearing_refused: ['The clearing office refused the record of this payment, so the shop was not paid for it.', 'Contact the shop if you were charged.'],
  // The shop's security module (the SAM card in its own reader).
  sam_unavailable: ['The shop\'s security module is not reachable right now; nothing more was charged.', 'Try again in a minute: if your card already paid, the shop completes the payment when its module is back.'],
  sam_blocked: ['The shop\'s security module is out of service, so the shop cannot take purse payments now.', 'Contact the shop; pay another way meanwhile.'],
  payment_retry: ['The payment service was busy with this payment.', 'Try again.'],
  records_missing: ['The shop\'s payment service could not close its day\'s batch.', 'Nothing to do for you; the shop must resolve it.'],
};

const EXTENSION = {
  busy: ['Another purse payment is already in progress in this browser.', 'Finish or cancel it first: only one payment runs at a time.'],
  host_not_installed: ['The purse card reader program (native host) is not installed.', 'Install the purse native host and register it for this browser: `native-host install --chrome-id <extension id>` (Chrome, Chromium) or `native-host install --firefox-id <add-on id>` (Firefox), then reload the shop\'s page.'],
  host_disconnected: ['The card reader program stopped unexpectedly.', 'Try again; if it happens again, reinstall the purse native host.'],
  host_outdated: ['The purse native host is too old for this extension.', 'Update the purse native host, then try again.'],
  extension_outdated: ['This extension is too old for the purse native host.', 'Update the extension, then try again.'],
  network_unreachable: ['The shop\'s payment service cannot be reached.', 'Check your Internet connection; anything the card answered is kept and sent again automatically.'],
  network_timeout: ['The shop\'s payment service did not answer in time.', 'Check your Internet connection; anything the card answered is kept and sent again automatically.'],
  service_error: ['The shop\'s payment service answered with an error.', 'Try again in a few minutes; contact the shop if it continues.'],
  shopper_timeout: ['The confirmation waited too long for you.', 'Nothing was charged. Start the payment again from the shop.'],
  card_timeout: ['No card was inserted in time.', 'Insert your purse card, then start the payment again from the shop.'],
  insecure_origin: ['This page, or the payment service it named, is not secure, so it may not ask for a payment.', 'Only pay on https pages; tell the shop.'],
  version_unsupported: ['The shop\'s page speaks a different version of the purse checkout.', 'Update the extension; if it is up to date, tell the shop.'],
  payment_not_payable: ['This payment cannot be paid (it is already paid, cancelled or expired).', 'Reload the shop\'s page to see its status.'],
  terms_invalid: ['The payment service sent terms this extension cannot show truthfully, so nothing was charged.', 'Contact the shop.'],
  initialize_invalid: ['The payment service sent a card command that is not a payment start, so nothing was charged.', 'Contact the shop.'],
  delivery_pending: ['The card was charged but the shop has not confirmed it yet.', 'Keep the browser open: the extension sends the card\'s answer again until the shop confirms. Nothing is charged twice.'],
  recovery_pending: ['The card was removed before the payment finished.', 'Put the card back into the reader: the extension checks what the card did.'],
  tick_withheld: ['The shop asked your card for the next period before it was due; it was not sent to the card.', 'Keep the card in the reader: the extension checks with the card what was charged.'],
  shopper_canceled: ['You cancelled the payment.', 'Nothing was charged.'],
  canceled: ['The shop\'s page cancelled the payment.', 'Nothing was charged.'],
  invalid_request: ['The shop\'s page sent a request this extension does not understand.', 'Reload the shop\'s page; if it happens again, tell the shop.'],
  amount_mismatch: ['The payment service asked the card for different terms than the ones shown to you, so nothing was charged.', 'Do not pay this shop again before you have checked the order with it.'],
  card_not_accepted: ['This shop does not accept this card (its key version).', 'Use another purse card, or ask your card issuer for a new card.'],
  insufficient_funds: ['There is not enough money on the card for this payment.', 'Load your card, or insert another purse card.'],
  internal: ['Something went wrong in the Purse extension.', 'Try again; if it happens again, restart the browser. Anything the card answered is kept.'],
  window_closed: ['The confirmation window was closed.', 'Nothing was charged. Start the payment again from the shop.'],
};

const CATALOGUE = Object.freeze({ host: HOST, plugin: PLUGIN, extension: EXTENSION });

/** The sources of errors, as the page protocol names them. */
export const SOURCES = Object.freeze(['plugin', 'host', 'extension', 'page']);

/** Every code the catalogue knows for a source. */
export function knownCodes(source) {
  return Object.keys(CATALOGUE[source] ?? {});
}

/**
 * The shopper's version of an error: {code, source, message, action}. `detail` (e.g.
 * the service's own sentence) is kept for the page and the log, never instead of ours.
 * A code the catalogue does not know still gets a sentence and an action.
 */
export function describe(source, code, detail) {
  const e = CATALOGUE[source]?.[code] ?? CATALOGUE.extension[code];
  const extra = detail ? { detail: String(detail).slice(0, 300) } : {};
  if (e) return { code, source, message: e[0], action: e[1], ...extra };
  return {
    code: String(code),
    source,
    message: detail ? `The payment did not go through: ${String(detail).slice(0, 300)}` : 'The payment did not go through.',
    action: 'Try again; if it keeps failing, contact the shop.',
    ...extra,
  };
}

/** Whether the catalogue has its own sentence for a code of a source. */
export function isKnown(source, code) {
  return Object.prototype.hasOwnProperty.call(CATALOGUE[source] ?? {}, code);
}
