// The state machine of the one payment the extension runs at a time: which moves are
// allowed (a Pay click only while confirming, a stop only before Pay or while a
// time-cycle runs, nothing after a final state), and which stage the page is told.
// Pure: the background's flow asks it before acting.

export const STATES = Object.freeze([
  'loading', // fetching the payment and the card
  'waiting_for_card', // no card in the reader yet
  'confirming', // the shopper sees the terms: Pay or Cancel
  'processing', // Pay pressed: INITIALIZE, DEBIT
  'running', // a time-cycle charged its first unit; ticks follow
  'stopping', // the shopper or the page stopped a running time-cycle
  'recovering', // a card answer was lost (card pulled): check the card when it is back
  'delivering', // the card answered; the payment service has not confirmed yet
  'succeeded', 'failed', 'canceled', // final
]);

export const FINAL = Object.freeze(['succeeded', 'failed', 'canceled']);

const T = {
  loading: { card: 'confirming', no_card: 'waiting_for_card', cancel: 'canceled', error: 'failed', lost: 'recovering' },
  waiting_for_card: { card: 'confirming', cancel: 'canceled', timeout: 'failed', error: 'failed' },
  confirming: { pay: 'processing', cancel: 'canceled', timeout: 'failed', no_card: 'waiting_for_card', error: 'failed' },
  processing: { paid: 'succeeded', running: 'running', no_card: 'waiting_for_card', lost: 'recovering', undelivered: 'delivering', error: 'failed' },
  running: { unit: 'running', stop: 'stopping', paid: 'succeeded', lost: 'recovering', undelivered: 'delivering', error: 'failed' },
  stopping: { unit: 'stopping', paid: 'succeeded', lost: 'recovering', undelivered: 'delivering', error: 'failed' },
  recovering: { card: 'recovering', paid: 'succeeded', error: 'failed' },
  delivering: { paid: 'succeeded', running: 'running', stop: 'stopping', lost: 'recovering', error: 'failed' },
};

/** The state after `event` in `state`, or null when the move is not allowed. */
export function next(state, event) {
  if (FINAL.includes(state)) return null;
  return T[state]?.[event] ?? null;
}

/** Whether the state is final. */
export function isFinal(state) {
  return FINAL.includes(state);
}

/** What a stop (the shopper's Stop/Cancel, or the page's `stop`) means in `state`. */
export function stopEvent(state) {
  if (state === 'loading' || state === 'waiting_for_card' || state === 'confirming') return 'cancel';
  if (state === 'running' || state === 'delivering') return 'stop';
  return null; // A debit under way finishes; recovery must run: nothing to stop.
}

/** The `progress.stage` the page is told for a state (null: nothing to tell). */
export function stageOf(state) {
  switch (state) {
    case 'confirming': case 'waiting_for_card': case 'processing':
    case 'running': case 'stopping': case 'recovering':
      return state;
    case 'delivering':
      return 'processing';
    default:
      return null;
  }
}
