// The requests the extension sends to the native host, against the host's contract
// (schema/native-messaging.schema.json when it is there) and the version check.
import test from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { HOST_NAME, PROTOCOL, interpret, isNotInstalled, mismatchProblem, request, versionProblem } from '../src/lib/native-protocol.js';
import { readRepoJson } from './support/repo.mjs';

const schema = readRepoJson('schema', 'native-messaging.schema.json');
const terms = { mode: 'time_cycle', unitAmount: 200, maxUnits: 4, currency: 'EUR', periodSeconds: 60 };

const ALL = [
  request.hello('purse-extension 0.1.0'), request.status(), request.cardInfo(), request.cardHistory(), request.waitCard(true, 1000),
  request.openPayment(terms, 120000), request.openPayment({ ...terms, mode: 'single', maxUnits: 1, periodSeconds: null }), request.openRecovery(7),
  request.apdu('s1', '00a4040007f045505552534500'), request.close('s1'), request.cancel(), request.held(), request.ack('h1'),
].map((r, i) => ({ ...r, id: i + 1 }));

test('the payment session carries exactly the confirmed terms', () => {
  assert.deepEqual(request.openPayment(terms), { type: 'open_session', purpose: 'payment', payment: { mode: 'time_cycle', unit_amount: 200, max_units: 4, currency: 978, period_seconds: 60 } });
  assert.deepEqual(request.openPayment({ ...terms, mode: 'single', maxUnits: 1, periodSeconds: null }).payment, { mode: 'single', unit_amount: 200, max_units: 1, currency: 978 }, 'no period for a single payment');
  assert.deepEqual(request.openRecovery(7), { type: 'open_session', purpose: 'recovery', recovery: { nt: 7 } }, 'a recovery names its NT');
  assert.throws(() => request.openPayment({ ...terms, currency: 'XYZ' }), RangeError);
});

test('every request passes the host schema', { skip: schema ? false : 'schema/native-messaging.schema.json is not there yet' }, () => {
  const ajv = new Ajv2020({ strict: false });
  const validate = ajv.compile(schema);
  for (const r of ALL) assert.ok(validate(r) || validateRequestDef(ajv, schema, r), `${JSON.stringify(r)}: ${JSON.stringify(validate.errors)}`);
});

/** A schema may describe requests under $defs.request rather than at its root. */
function validateRequestDef(ajv, s, r) {
  const def = s.$defs?.request ?? s.$defs?.Request;
  if (!def) return false;
  return ajv.compile({ ...s, ...def, $id: undefined })(r);
}

test('replies are matched to what was asked; errors keep code, sentence and detail', () => {
  assert.deepEqual(interpret({ type: 'apdu' }, { type: 'apdu', id: 3, session: 's', response: '9000' }), { ok: true, reply: { type: 'apdu', id: 3, session: 's', response: '9000' } });
  assert.deepEqual(interpret({ type: 'card_info' }, { type: 'error', code: 'no_card', message: 'There is no card.', detail: 'reader R' }), { ok: false, error: { code: 'no_card', message: 'There is no card.', detail: 'reader R' } });
  assert.equal(interpret({ type: 'apdu' }, { type: 'held', responses: [] }).error.code, 'invalid_reply');
  assert.equal(interpret({ type: 'apdu' }, null).ok, false);
});

test('the version check says which side to update', () => {
  assert.equal(versionProblem({ protocol: 1, supported: [1] }), null);
  assert.equal(versionProblem({ protocol: 2, supported: [1, 2] }), null);
  assert.equal(versionProblem({ protocol: 2, supported: [2, 3] }), 'extension_outdated');
  assert.equal(versionProblem({ protocol: 0, supported: [0] }), 'host_outdated');
  assert.equal(PROTOCOL, 1);
  // The host's refusal of our hello names the versions it speaks (native-host/src/serve).
  assert.equal(mismatchProblem('the extension speaks protocol 1; this host speaks [2, 3]'), 'extension_outdated');
  assert.equal(mismatchProblem('the extension speaks protocol 1; this host speaks [0]'), 'host_outdated');
  assert.equal(mismatchProblem('something else'), 'version_mismatch');
  assert.match(HOST_NAME, /^[a-z0-9_]+(\.[a-z0-9_]+)*$/);
});

test('a missing host is told apart from a crashed one', () => {
  assert.ok(isNotInstalled('Specified native messaging host not found.'));
  assert.ok(isNotInstalled('No such native application org.purse.native_host'));
  assert.ok(!isNotInstalled('Native host has exited.'));
});
