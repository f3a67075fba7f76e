// The popup's history through the host's card_history: the host reads the card itself,
// the extension only asks and shows (background/card.js, lib/history.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { readHistory } from '../src/background/card.js';
import { HostError } from '../src/background/host.js';
import { historyRows } from '../src/lib/history.js';

const CARD = { card_id: '1000000000000001', key_version: 1, currency: 978, currency_code: 'EUR', balance: 8150, balance_text: '81.50 EUR', nt_last: 2 };
const RECORDS = [
  { nt: 2, sam_id: '5a00000000000001', sam_tx_seq: 7, datetime: 1795000100, mode: 'time_cycle', unit_amount: 200, units: 3, total: 600, balance_after: 8150 },
  { nt: 1, sam_id: '5a00000000000009', sam_tx_seq: 3, datetime: 1795000000, mode: 'single', unit_amount: 1250, units: 1, total: 1250, balance_after: 8750 },
];

function host(answers) {
  const asked = [];
  return { asked, call: async (req) => { asked.push(req); const a = answers.shift(); if (a instanceof Error) throw a; return a; } };
}

test('the history is one card_history request: no session, no APDU of ours', async () => {
  const h = host([{ type: 'card_history', reader: 'R', card: CARD, records: RECORDS }]);
  const got = await readHistory(h);
  assert.deepEqual(h.asked, [{ type: 'card_history' }]);
  assert.equal(got.card.cardId, CARD.card_id);
  assert.equal(got.card.balance, 8150);
  assert.deepEqual(got.records.map((r) => [r.nt, r.samId, r.mode, r.balanceAfter]), [[2, '5a00000000000001', 'time_cycle', 8150], [1, '5a00000000000009', 'single', 8750]]);
  const rows = historyRows(got.records, got.card.currency);
  assert.deepEqual(rows.map((r) => r.amount), ['6.00 EUR (3 × 2.00 EUR)', '12.50 EUR']);
  assert.equal(rows[0].balance, '81.50 EUR');
});

test('no card: no history; a card that left mid-read is waited out; other errors throw', async () => {
  assert.equal(await readHistory(host([new HostError('no_card', 'There is no card.')])), null);
  const h = host([new HostError('card_removed', 'gone'), { type: 'card_event', reader: 'R', present: false }, new HostError('no_card', 'none')]);
  assert.equal(await readHistory(h), null);
  assert.deepEqual(h.asked.map((r) => r.type), ['card_history', 'wait_card', 'card_history']);
  await assert.rejects(readHistory(host([new HostError('busy', 'held')])), (e) => e.code === 'busy');
});
