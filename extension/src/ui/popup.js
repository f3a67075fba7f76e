// The toolbar popup: whether the native host answers (and its version), the card in the
// reader with its balance, the card's recent transactions (its own records, newest
// first), and card answers still waiting to reach a shop.

import { formatAmount } from '../lib/money.js';
import { historyRows } from '../lib/history.js';

const api = globalThis.browser ?? globalThis.chrome;
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

function render(s) {
  if (s.host) {
    const readers = (s.host.readers ?? []).map((r) => `${r.name}${r.card_present ? ' (card)' : ''}`).join(', ');
    $('host').textContent = `native host ${s.host.version}, card service ${s.host.pcsc ?? '?'}${readers ? `, readers: ${readers}` : ''}`;
  } else {
    $('host').textContent = 'not reachable';
  }
  if (s.card) {
    $('card').textContent = `${s.card.cardId}: ${formatAmount(s.card.balance, s.card.currency)}`;
  } else {
    $('card').textContent = s.current ? 'busy with a payment' : 'no card in the reader';
  }
  const body = $('history').querySelector('tbody');
  body.replaceChildren();
  const rows = s.card ? historyRows(s.history ?? [], s.card.currency) : [];
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const [v, cls] of [[r.date, ''], [r.shop, ''], [r.amount, 'num'], [r.balance, 'num']]) {
      const td = document.createElement('td');
      td.textContent = v;
      if (cls) td.className = cls;
      tr.append(td);
    }
    body.append(tr);
  }
  $('history-empty').hidden = rows.length > 0 || !s.card;
  $('pending').textContent = s.pending ? `${s.pending} card answer(s) waiting to reach a shop.` : '';
  $('deliver').hidden = !s.pending;
  const err = $('error');
  err.hidden = !s.error;
  err.textContent = s.error ? `${s.error.message} ${s.error.action}` : '';
}

async function refresh() {
  render(await api.runtime.sendMessage({ type: 'popup-status' }));
}

$('deliver').addEventListener('click', async () => {
  await api.runtime.sendMessage({ type: 'popup-deliver' });
  await refresh();
});

refresh();
