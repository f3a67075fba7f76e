// The Pay button's activation delay: like the browsers' own permission prompts, a
// button that moves money is live only some time after the window appeared, and again
// after the window came back to the front, so a click the page provoked (a double
// click on "Buy", a button placed under the pointer) cannot land on it. Pure: the
// confirmation window asks it; `now` is passed in so tests drive the clock.

/** How long Pay stays disabled after the window is shown, focused or made visible (ms). */
export const PAY_DELAY_MS = 800;

export class ActivationGate {
  constructor(now, delayMs = PAY_DELAY_MS) {
    this.now = now;
    this.delayMs = delayMs;
    this.since = now();
  }

  /** The window was shown again (focus, visible): the delay starts over. */
  rearm() {
    this.since = this.now();
  }

  /** Milliseconds until Pay may be pressed (0: now). */
  msLeft() {
    return Math.max(0, this.since + this.delayMs - this.now());
  }

  ready() {
    return this.msLeft() === 0;
  }
}
