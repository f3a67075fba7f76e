// One payment, from the page's request to its end: load the terms from the payment
// service, read the card, let the shopper confirm in the extension's own window, then
// relay INITIALIZE and DEBIT (and the ticks of a time-cycle) between the payment
// service and the card through the native host, keeping every card answer in storage
// until the service has acknowledged it, and recovering with the card when an answer
// was lost. The moves are checked by lib/session.js; the texts come from lib/view.js.

import { describe } from '../lib/errors.js';
import { Deferred, FlowError, asFlowError, sleep } from './flow-error.js';
import { request } from '../lib/native-protocol.js';
import { reply } from '../lib/page-protocol.js';
import { initializeFor, termsOf } from '../lib/payment-terms.js';
import { sameCurrency } from '../lib/money.js';
import { parseInitializeAnswer } from '../lib/apdu.js';
import { deliveryCall, isFinalRefusal, makeRecord, retryDelayMs } from '../lib/pending.js';
import { isFinal, next, stageOf, stopEvent } from '../lib/session.js';
import { buildView } from '../lib/view.js';
import { cardOf, readCard, waitCard } from './card.js';
import { runRecovery, waitForCardBack } from './recovery.js';
import { runCycle } from './cycle.js';
import { HostError, LOST_ANSWER_CODES } from './host.js';

export const DEFAULTS = Object.freeze({
  shopperTimeoutMs: 5 * 60 * 1000, // the shopper decides
  cardTimeoutMs: 2 * 60 * 1000, // a card is inserted
  recoveryCardTimeoutMs: 10 * 60 * 1000, // the card comes back after it was pulled
  apduTimeoutMs: 15000, // the card answers one command
  deliveryAttempts: 4, // sending an answer again before telling the page "pending"
});

/** Time as the flow sees it (a test passes a virtual one). */
export const SYSTEM_CLOCK = Object.freeze({ now: () => Date.now(), sleep });

export class PaymentFlow {
  constructor({ flowId, requestId, payment, pageOrigin, toPage, makeHost, plugin, pending, ui, extensionInfo, config = {}, onEnd = () => {}, log = () => {}, collectHeld = async () => {}, clock = SYSTEM_CLOCK }) {
    Object.assign(this, { flowId, requestId, ref: payment, pageOrigin, toPage, makeHost, plugin, pending, ui, extensionInfo, onEnd, log, collectHeld, clock });
    this.config = { ...DEFAULTS, ...config };
    this.state = 'loading';
    this.decision = new Deferred();
    this.stopWake = new Deferred();
    this.stopRequested = false;
    this.facts = { state: 'loading', pageOrigin, serviceOrigin: new URL(payment.api).origin };
    this.host = null;
    this.session = null;
    this.done = new Deferred();
  }

  // ------------------------------------------------------------------ state

  move(event) {
    const to = next(this.state, event);
    if (to === null) return false;
    this.state = to;
    this.facts.state = to;
    const stage = stageOf(to);
    if (stage && stage !== this.lastStage) {
      this.lastStage = stage;
      this.toPage(reply.progress(this.requestId, stage, this.facts.payment));
    }
    this.render();
    return true;
  }

  render() {
    this.ui.push(this.flowId, buildView(this.facts));
  }

  view() {
    return buildView(this.facts);
  }

  // ------------------------------------------------------------------ from outside

  /** The shopper pressed Pay (only counts while confirming). */
  pay() {
    if (this.state !== 'confirming' || !this.view().canPay) return false;
    this.payClickedAt = performance.now();
    this.decision.resolve({ kind: 'pay' });
    return true;
  }

  /** The shopper's Cancel/Stop, the page's stop, or the window closed. */
  stop(code = 'shopper_canceled') {
    const ev = stopEvent(this.state);
    if (ev === 'cancel') {
      this.decision.resolve({ kind: 'cancel', code });
      return true;
    }
    if (ev === 'stop') {
      this.stopRequested = true;
      this.stopWake.resolve();
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------------ the run

  async run() {
    try {
      const kept = await this.resumeKept();
      const p = await this.plugin.payment(this.ref.id, this.ref.clientSecret);
      if (p.status === 'succeeded') return this.succeed(p); // paid before: say so again
      if (kept?.kind === 'recovery' && (p.status === 'authorized' || p.status === 'running')) return this.recoverKept(p, kept);
      if (p.status !== 'created') throw new FlowError('extension', 'payment_not_payable', `the payment is ${p.status}`, p);
      const terms = termsOf(p);
      if (terms.error) throw new FlowError('extension', 'terms_invalid', terms.error);
      this.terms = terms;
      this.facts.terms = terms;
      this.facts.payment = p;
      this.paymentObject = p;
      await this.ui.open(this.flowId);
      this.host = this.makeHost();
      this.host.onEvent((m) => this.hostEvent(m));
      await this.host.greet(`purse-extension ${this.extensionInfo.version}`);
      await this.deliverHeld();
      for (;;) {
        await this.untilCard();
        const wake = new Deferred();
        const d = await Promise.race([
          this.decision.promise,
          sleep(this.config.shopperTimeoutMs, wake.promise).then(() => ({ kind: 'timeout' })),
        ]);
        wake.resolve();
        if (d.kind === 'cancel') return this.cancel(d.code === 'shopper_canceled' && this.view().insufficient ? 'insufficient_funds' : d.code);
        if (d.kind === 'timeout') {
          this.move('timeout');
          throw new FlowError('extension', 'shopper_timeout');
        }
        const again = await this.payNow();
        if (!again) return;
        this.decision = new Deferred(); // the card left before any debit: confirm again
      }
    } catch (e) {
      return this.fail(asFlowError(e));
    } finally {
      this.finish();
    }
  }

  /**
   * A request for a payment with a kept record (the page retried): a kept answer goes
   * to the service first; a kept recovery is returned for recoverKept.
   */
  async resumeKept() {
    const rec = await this.pending.get(this.ref.id);
    if (!rec) return null;
    const call = deliveryCall(rec);
    if (!call) return rec;
    const [method, args] = call;
    try {
      await this.withRetry(() => this.plugin[method](...args));
    } catch (e) {
      if (e.code === 'recovery_required') {
        await this.pending.put({ ...rec, kind: 'recovery', response: null });
        return { ...rec, kind: 'recovery' };
      }
      throw e;
    }
    await this.pending.remove(this.ref.id);
    if (rec.heldId) {
      // The host's copy is no longer needed either.
      const host = this.makeHost();
      await host.call(request.ack(rec.heldId), 5000).catch(() => {});
      host.close();
    }
    this.log(`delivered the kept ${rec.kind} of ${this.ref.id} on the page's retry`);
    return null;
  }

  /** The page retried a payment whose answer was lost: recover with the card now. */
  async recoverKept(p, kept) {
    const terms = termsOf(p);
    if (!terms.error) this.facts.terms = terms;
    this.terms = terms.error ? null : terms;
    this.facts.payment = p;
    this.card = { cardId: kept.cardId, kv: kept.kv };
    this.nt = kept.nt ?? null;
    await this.ui.open(this.flowId);
    this.host = this.makeHost();
    await this.host.greet(`purse-extension ${this.extensionInfo.version}`);
    // The host may hold the answer that was lost on its way here: that settles it.
    await this.deliverHeld();
    if (!(await this.pending.get(this.ref.id))) {
      const now = await this.withRetry(() => this.plugin.payment(this.ref.id, this.ref.clientSecret));
      if (now.status === 'succeeded') return this.succeed(now);
      if (now.status === 'failed') throw new FlowError('plugin', now.failure?.code ?? 'not_debited', now.failure?.message, now);
    }
    this.move('lost');
    this.facts.error = describe('extension', 'recovery_pending');
    this.render();
    const after = await this.recover();
    this.facts.error = undefined;
    if (after.status === 'succeeded') return this.succeed(after);
    throw new FlowError('plugin', after.failure?.code ?? 'not_debited', after.failure?.message, after);
  }

  /** Until a card is in the reader: its balance is shown and Pay may be pressed. */
  async untilCard() {
    for (;;) {
      const card = await readCard(this.host);
      if (card) {
        card.currencyOk = sameCurrency(card.currency, this.terms.currency);
        this.facts.card = card;
        this.card = card;
        this.facts.notice = undefined;
        if (this.state === 'confirming') this.render();
        else this.move('card');
        return;
      }
      this.facts.card = undefined;
      if (this.state === 'waiting_for_card') this.render();
      else this.move('no_card');
      const got = await Promise.race([
        waitCard(this.host, true, this.config.cardTimeoutMs),
        this.decision.promise.then(() => 'decided'),
      ]);
      if (got === 'decided') return; // Cancel while waiting: the caller sees the decision
      if (got === false) {
        this.move('timeout');
        throw new FlowError('extension', 'card_timeout');
      }
    }
  }

  /** Pay pressed. Returns true when the card left before any debit (confirm again). */
  async payNow() {
    this.move('pay');
    const t = this.terms;
    let opened;
    try {
      opened = await this.host.call(request.openPayment(t, t.mode === 'time_cycle' ? Math.min(3600000, t.periodSeconds * 1000 + 60000) : undefined), 15000);
    } catch (e) {
      if (e instanceof HostError && (e.code === 'no_card' || e.code === 'card_removed')) return this.backToCard();
      throw e;
    }
    this.session = opened.session;
    const card = cardOf(opened.card);
    this.card = { ...this.card, ...card };
    if (!sameCurrency(card.currency, t.currency)) throw new FlowError('host', 'currency_mismatch');
    const init = initializeFor(this.paymentObject, card.kv, t);
    if (init.error) throw new FlowError('extension', init.error);

    let initAnswer;
    try {
      initAnswer = await this.apdu(init.apdu);
    } catch (e) {
      // INITIALIZE never debits: a card pulled here costs nothing.
      if (e instanceof HostError && LOST_ANSWER_CODES.has(e.code)) return this.backToCard();
      throw e;
    }
    const step = await this.withRetry(() => this.plugin.initialize(this.ref.id, this.ref.clientSecret, card.kv, initAnswer.response));
    if (!step.command) throw new FlowError('plugin', 'wrong_state', 'the payment service gave no DEBIT');
    this.facts.payment = step;
    // The NT of this payment, from the card's own answer (never the shop's word): what a
    // recovery may read, and the key of the host's held answers.
    const started = parseInitializeAnswer(initAnswer.response);
    if (started === null || started.cardId !== card.cardId) throw new FlowError('plugin', 'wrong_state', 'a DEBIT without an accepted INITIALIZE');
    this.nt = started.nt;

    // From here the card may debit: keep what recovery needs before the DEBIT leaves.
    await this.keep('recovery');
    let debit;
    try {
      debit = await this.apdu(step.command);
    } catch (e) {
      if (e instanceof HostError) return this.lost(e);
      throw e;
    }
    // Unit 1 is charged: a time-cycle's unit k is due (k-1) confirmed periods after this.
    this.debitAt = this.clock.now();
    const p = await this.deliver('answer', debit, () => this.plugin.answer(this.ref.id, this.ref.clientSecret, debit.response));
    return this.after(p);
  }

  /** The card went away before anything was debited: wait for it and confirm again. */
  async backToCard() {
    await this.closeSession();
    this.facts.card = undefined;
    this.move('no_card');
    return true;
  }

  /** What the service said after a card answer: done, running, or recovery. */
  async after(p) {
    this.facts.payment = p;
    if (p.recovery_required) return this.lost(new HostError('card_error', '', 'the payment service could not verify the card answer'));
    if (p.status === 'succeeded') return this.succeed(p);
    if (p.status === 'running') return this.cycle(p);
    if (p.status === 'failed') throw new FlowError('plugin', p.failure?.code ?? 'card_declined', p.failure?.message, p);
    throw new FlowError('plugin', 'wrong_state', `the payment is ${p.status}`, p);
  }

  /** A running time-cycle (cycle.js). */
  async cycle(p) {
    return runCycle(this, p);
  }

  /** Sends one APDU in the open session. */
  async apdu(hex) {
    return this.host.call(request.apdu(this.session, hex), this.config.apduTimeoutMs);
  }

  /** Keeps a record for this payment (an answer to deliver, or a recovery to run). */
  async keep(kind, response, heldId) {
    await this.pending.put({
      ...makeRecord({
        kind,
        api: this.ref.api,
        pageOrigin: this.pageOrigin,
        paymentId: this.ref.id,
        clientSecret: this.ref.clientSecret,
        response,
        cardId: this.card?.cardId,
        kv: this.card?.kv,
        nt: this.nt ?? null,
      }),
      cardId: this.card?.cardId ?? null,
      kv: this.card?.kv ?? null,
      heldId: heldId ?? null,
    });
  }

  /**
   * Delivers a card answer: kept in storage first, sent until the service takes it,
   * then forgotten (here and in the host). The page hears "delivery_pending" when the
   * service stays unreachable; the background keeps trying (deliveries.js).
   */
  async deliver(kind, answer, send) {
    await this.keep(kind, answer.response, answer.held_id);
    for (let attempt = 0; ; attempt++) {
      try {
        const p = await send();
        await this.delivered(answer.held_id);
        if (this.state === 'delivering') this.move(p.status === 'running' ? 'running' : 'paid');
        return p;
      } catch (e) {
        if (e.code === 'recovery_required') return { ...this.facts.payment, recovery_required: true };
        if (!e.retryable) {
          // Only the service's own refusal settles the record; anything else keeps it.
          if (isFinalRefusal(e)) await this.pending.remove(this.ref.id);
          throw e;
        }
        if (attempt === 0) this.move('undelivered');
        this.facts.notice = `The card has paid; the shop's payment service is not answering (${describe('extension', e.code).message}). Trying again…`;
        this.render();
        if (attempt + 1 >= this.config.deliveryAttempts) {
          throw new FlowError('extension', 'delivery_pending', e.message);
        }
        await this.clock.sleep(Math.max(retryDelayMs(attempt), e.retryAfterMs ?? 0));
      }
    }
  }

  async delivered(heldId) {
    // The answer is with the service, and the recovery context is no longer needed.
    await this.pending.remove(this.ref.id);
    if (heldId) await this.host.call(request.ack(heldId), 5000).catch(() => {});
  }

  /** Retries a service call that changes nothing when repeated (same answer, same result). */
  async withRetry(f) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await f();
      } catch (e) {
        if (!e.retryable || attempt + 1 >= this.config.deliveryAttempts) throw e;
        await this.clock.sleep(Math.max(retryDelayMs(attempt), e.retryAfterMs ?? 0));
      }
    }
  }

  /**
   * A DEBIT or TICK answer was lost (card pulled...), or a TICK was withheld (`why`
   * tick_withheld): recovery with the card decides what it did.
   */
  async lost(hostError, why = 'recovery_pending') {
    this.log(`answer lost: ${hostError.code} ${hostError.detail ?? ''}`);
    await this.keep('recovery');
    this.move('lost');
    this.facts.error = describe('extension', why);
    this.render();
    await this.closeSession();
    // Tell the service the exchange failed (it then waits for recovery); best effort:
    // recovery decides either way.
    await this.plugin.answer(this.ref.id, this.ref.clientSecret, null).catch(() => {});
    const p = await this.recover();
    this.facts.error = undefined;
    if (p.status === 'succeeded') return this.succeed(p);
    if (p.status === 'failed') throw new FlowError('plugin', p.failure?.code ?? 'not_debited', p.failure?.message, p);
    throw new FlowError('extension', 'recovery_pending', `the payment is ${p.status} after recovery`, p);
  }

  /** Waits for the card that paid, then runs the service's recovery through the host. */
  async recover() {
    const back = await waitForCardBack(this.host, this.card.cardId, this.config.recoveryCardTimeoutMs, (notice) => {
      this.facts.notice = notice;
      this.render();
    });
    if (!back) throw new FlowError('extension', 'recovery_pending', 'the card did not come back in time');
    this.log('recovery: the card is back');
    await runRecovery(this.host, this.plugin, { cardId: this.card.cardId, kv: this.card.kv, nt: this.nt, clientSecret: this.ref.clientSecret }, this.log);
    this.log('recovery: done');
    const p = await this.withRetry(() => this.plugin.payment(this.ref.id, this.ref.clientSecret));
    // Only a decided payment lets the record go; an undecided one is recovered later.
    if (p.status === 'succeeded' || p.status === 'failed') await this.pending.remove(this.ref.id);
    return p;
  }

  /** The host's held card answers go to their payment services first (deliveries.js). */
  async deliverHeld() {
    try {
      await this.collectHeld(this.host);
    } catch (e) {
      this.log(`held answers not collected: ${e.code ?? e.message}`);
    }
  }

  // ------------------------------------------------------------------ endings

  hostEvent(m) {
    if (m?.type === 'session_closed' && m.session === this.session) {
      this.log(`session closed by the host: ${m.reason}`);
      this.session = null;
    }
  }

  async closeSession() {
    if (!this.session || !this.host) return;
    const s = this.session;
    this.session = null;
    await this.host.call(request.close(s), 5000).catch(() => {});
  }

  succeed(p) {
    this.facts.payment = p;
    this.facts.error = undefined;
    this.facts.notice = undefined;
    if (Number.isFinite(this.payClickedAt)) this.facts.payMs = performance.now() - this.payClickedAt;
    this.move('paid');
    if (!isFinal(this.state)) {
      // Paid before this run even started (a request repeated after success).
      this.state = 'succeeded';
      this.facts.state = 'succeeded';
      this.render();
    }
    this.toPage(reply.success(this.requestId, p));
  }

  cancel(code) {
    this.facts.error = describe('extension', code);
    this.move('cancel');
    this.toPage(reply.failure(this.requestId, { ...describe('extension', code), source: code === 'canceled' ? 'page' : 'extension' }));
  }

  fail(err) {
    const info = err.info;
    this.log(`payment ${this.ref.id} failed in ${this.state}: ${info.source}/${info.code}${info.detail ? ` (${info.detail})` : ''}`);
    this.facts.error = info;
    this.move('error');
    if (!isFinal(this.state)) {
      this.state = 'failed';
      this.facts.state = 'failed';
      this.render();
    }
    const message = `${info.message} ${info.action}`;
    this.toPage(reply.failure(this.requestId, { code: info.code, message, source: info.source }, err.payment));
  }

  async finish() {
    await this.closeSession();
    if (this.host) this.host.close();
    this.done.resolve(this.state);
    this.onEnd(this);
  }
}
