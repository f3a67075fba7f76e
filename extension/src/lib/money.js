// Money: amounts in minor units (integers, never floats), ISO 4217 currencies by alpha
// code or number, and how they are written for the shopper ("12.50 EUR").

/** ISO 4217: number -> [alpha code, minor-unit exponent] for the currencies we name. */
const ISO4217 = new Map([
  [36, ['AUD', 2]], [48, ['BHD', 3]], [124, ['CAD', 2]], [156, ['CNY', 2]],
  [203, ['CZK', 2]], [208, ['DKK', 2]], [348, ['HUF', 2]], [352, ['ISK', 0]],
  [368, ['IQD', 3]], [392, ['JPY', 0]], [400, ['JOD', 3]], [410, ['KRW', 0]],
  [414, ['KWD', 3]], [434, ['LYD', 3]], [512, ['OMR', 3]], [554, ['NZD', 2]],
  [578, ['NOK', 2]], [643, ['RUB', 2]], [704, ['VND', 0]], [752, ['SEK', 2]],
  [756, ['CHF', 2]], [788, ['TND', 3]], [826, ['GBP', 2]], [840, ['USD', 2]],
  [946, ['RON', 2]], [949, ['TRY', 2]], [950, ['XAF', 0]], [952, ['XOF', 0]],
  [975, ['BGN', 2]], [978, ['EUR', 2]], [985, ['PLN', 2]], [986, ['BRL', 2]],
]);
const BY_ALPHA = new Map([...ISO4217].map(([num, [alpha, exp]]) => [alpha, { alpha, numeric: num, exponent: exp }]));

/**
 * The currency named by an alpha code ("EUR"), its number (978) or the number as text
 * ("978"). Unknown currencies are returned with exponent 2 and `known: false` only when
 * given as a three-letter code; anything else is null.
 */
export function currency(c) {
  if (typeof c === 'string' && /^[0-9]{1,3}$/.test(c)) c = Number(c);
  if (typeof c === 'number') {
    const e = ISO4217.get(c);
    return e ? { alpha: e[0], numeric: c, exponent: e[1], known: true } : null;
  }
  if (typeof c === 'string' && /^[A-Z]{3}$/.test(c)) {
    const e = BY_ALPHA.get(c);
    return e ? { ...e, known: true } : { alpha: c, numeric: null, exponent: 2, known: false };
  }
  return null;
}

/** Whether two currency designations (alpha or numeric) name the same currency. */
export function sameCurrency(a, b) {
  const x = currency(a);
  const y = currency(b);
  return x !== null && y !== null && x.alpha === y.alpha;
}

/** Whether `v` is an amount in minor units: a non-negative safe integer. */
export function isMinorAmount(v) {
  return Number.isSafeInteger(v) && v >= 0;
}

/** "12.50 EUR" for 1250 EUR; "1250 JPY"; digits only, by string arithmetic. */
export function formatAmount(minor, cur) {
  if (!isMinorAmount(minor)) throw new TypeError(`not an amount in minor units: ${minor}`);
  const c = currency(cur);
  if (c === null) throw new TypeError(`not a currency: ${cur}`);
  const digits = String(minor);
  if (c.exponent === 0) return `${groupThousands(digits)} ${c.alpha}`;
  const padded = digits.padStart(c.exponent + 1, '0');
  const whole = padded.slice(0, padded.length - c.exponent);
  const frac = padded.slice(padded.length - c.exponent);
  return `${groupThousands(whole)}.${frac} ${c.alpha}`;
}

function groupThousands(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Multiplies two amounts/counts exactly; null when the product is not a safe integer. */
export function multiply(a, b) {
  const p = BigInt(a) * BigInt(b);
  return p <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(p) : null;
}

/** "1 minute", "90 seconds", "2 hours", "1 day": a period in seconds for the shopper. */
export function formatPeriod(seconds) {
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new TypeError(`not a period: ${seconds}`);
  const units = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}
