// The confirmation window's script: shows the view the background pushes (built by
// lib/view.js) and sends back the shopper's Pay, Cancel and Stop. It computes nothing
// about money itself. Pay is live only PAY_DELAY_MS after the window was shown, focused
// or made visible again, and after Pay became pressable (lib/activation.js).

import { ActivationGate } from '../lib/activation.js';

const api = globalThis.browser ?? globalThis.chrome;
const flow = new URLSearchParams(location.search).get('flow');
const gate = new ActivationGate(() => performance.now());
let lastView = null;
let payable = false;
let rearmTimer = null;
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

function text(id, value) {
  const el = $(id);
  el.textContent = value ?? '';
}

function show(id, yes) {
  $(id).hidden = !yes;
}

function render(v) {
  lastView = v;
  document.body.dataset.state = v.state;
  $('status').dataset.state = v.state;
  text('shop-host', v.host);
  text('shop-origin', v.origin);
  show('service-origin-line', Boolean(v.serviceOrigin));
  text('service-origin', v.serviceOrigin);
  text('description', v.description ?? '…');
  text('amount-label', v.mode === 'time_cycle' ? 'Price' : 'Amount');
  text('amount', v.amountText ?? '…');
  show('time-cycle', v.mode === 'time_cycle');
  text('unit-amount', v.unitText);
  text('period', v.periodText);
  text('cap', v.capText);
  text('balance', v.balanceText ?? (v.state === 'waiting_for_card' ? 'No card in the reader' : '…'));
  text('headline', v.headline);
  show('running', Boolean(v.runningText));
  text('running', v.runningText);
  const final = v.state === 'succeeded';
  show('result', final && Boolean(v.chargedText));
  text('charged', v.chargedText);
  text('new-balance', v.newBalanceText ?? '');
  show('notice', Boolean(v.notice));
  text('notice', v.notice);
  show('error', Boolean(v.errorText));
  text('error-text', v.errorText);
  text('error-action', v.actionText);
  // Pay becoming pressable is Pay appearing: the delay starts then too.
  if (v.canPay && !payable) rearmFor('pressable');
  payable = Boolean(v.canPay);
  $('pay').disabled = !v.canPay || !gate.ready();
  clearTimeout(rearmTimer);
  // A few ms past the delay: a timer may fire a little before performance.now() says
  // the delay is over, and the retry it then schedules (a fraction of a millisecond) was
  // seen in Chromium never to run, leaving Pay disabled for good.
  if (v.canPay && !gate.ready()) rearmTimer = setTimeout(() => render(lastView), Math.ceil(gate.msLeft()) + 10);
  const d = document.body.dataset;
  d.payRenders = String(Number(d.payRenders ?? 0) + 1);
  d.payCanPay = String(Boolean(v.canPay));
  d.payMsLeft = String(gate.msLeft());
  show('pay', v.showPay);
  show('cancel', v.canCancel);
  show('stop', v.canStop);
  show('close', v.canClose);
  if (Number.isFinite(v.payMs)) document.body.dataset.payMs = String(v.payMs);
}

const port = api.runtime.connect({ name: 'purse-confirm' });
port.onMessage.addListener((m) => {
  if (m?.type === 'view') render(m.view);
  if (m?.type === 'gone') {
    text('headline', 'This payment is no longer running.');
    show('close', true);
    show('cancel', false);
    $('pay').disabled = true;
  }
});
port.postMessage({ type: 'attach', flow });

/** Starts Pay's delay over; how often and why is kept on the page (a support aid: a
 * Pay that never comes live shows what held it). */
function rearmFor(why) {
  gate.rearm();
  const d = document.body.dataset;
  d.payRearms = String(Number(d.payRearms ?? 0) + 1);
  d.payRearmedBy = why;
}

/** The window came (back) to the front: Pay waits its delay again. */
function rearm(why) {
  rearmFor(why);
  if (lastView) render(lastView);
}
window.addEventListener('focus', () => rearm('focus'));
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') rearm('visible');
});

$('pay').addEventListener('click', () => {
  if (gate.ready()) port.postMessage({ type: 'pay' });
});
$('cancel').addEventListener('click', () => port.postMessage({ type: 'cancel' }));
$('stop').addEventListener('click', () => port.postMessage({ type: 'stop' }));
$('close').addEventListener('click', () => window.close());
