// The card's transaction records as rows of the popup's history: date (UTC), the shop's
// SAM, what was charged (with units for a time-cycle) and the balance after. Pure.

import { formatAmount } from './money.js';

export function historyRows(records, currency) {
  return records.map((r) => ({
    nt: r.nt,
    date: new Date(r.dateTime * 1000).toISOString().slice(0, 16).replace('T', ' '),
    shop: r.samId,
    amount: r.mode === 'time_cycle' ? `${formatAmount(r.total, currency)} (${r.units} × ${formatAmount(r.unitAmount, currency)})` : formatAmount(r.total, currency),
    balance: formatAmount(r.balanceAfter, currency),
  }));
}
