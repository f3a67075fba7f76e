// The shopper API client against a real HTTP server on loopback.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { PAGE_ORIGIN_HEADER, pluginClient } from '../src/lib/plugin-api.js';

async function server(handler) {
  const seen = [];
  const s = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    seen.push({ method: req.method, url: req.url, headers: req.headers, body: body ? JSON.parse(body) : null });
    handler(req, res, seen.at(-1));
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { url: `http://127.0.0.1:${s.address().port}`, seen, close: () => new Promise((r) => { s.closeAllConnections(); s.close(r); }) };
}

const json = (res, status, v) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };

test('every call names the page origin and carries the client secret, never cookies', async (t) => {
  const s = await server((req, res) => json(res, 200, { id: 'pay_1', status: 'created', command: null }));
  t.after(s.close);
  const c = pluginClient({ api: s.url, pageOrigin: 'https://shop.example', fetch });
  await c.payment('pay_1', 'pay_1_secret_a+b');
  await c.initialize('pay_1', 'pay_1_secret_x', 1, 'aa9000');
  await c.answer('pay_1', 'pay_1_secret_x', null);
  await c.tick('pay_1', 'pay_1_secret_x');
  await c.tick('pay_1', 'pay_1_secret_x', 'bb9000');
  await c.stop('pay_1', 'pay_1_secret_x', 'cc9000');
  await c.startRecovery('1000000000000001', 1, 'pay_1_secret_x');
  await c.recoveryAnswer('rec_1', 'dd9000');
  assert.deepEqual(s.seen.map((r) => `${r.method} ${r.url}`), [
    'GET /v1/checkout/payments/pay_1?client_secret=pay_1_secret_a%2Bb',
    'POST /v1/checkout/payments/pay_1/initialize',
    'POST /v1/checkout/payments/pay_1/answer',
    'POST /v1/checkout/payments/pay_1/tick',
    'POST /v1/checkout/payments/pay_1/tick',
    'POST /v1/checkout/payments/pay_1/stop',
    'POST /v1/checkout/recoveries',
    'POST /v1/checkout/recoveries/rec_1',
  ]);
  for (const r of s.seen) {
    assert.equal(r.headers[PAGE_ORIGIN_HEADER], 'https://shop.example');
    assert.equal(r.headers.cookie, undefined);
  }
  assert.deepEqual(s.seen.slice(1).map((r) => r.body), [
    { client_secret: 'pay_1_secret_x', kv: 1, response: 'aa9000' },
    { client_secret: 'pay_1_secret_x', response: null },
    { client_secret: 'pay_1_secret_x' },
    { client_secret: 'pay_1_secret_x', answer: { response: 'bb9000' } },
    { client_secret: 'pay_1_secret_x', answer: { response: 'cc9000' } },
    { card_id: '1000000000000001', kv: 1, client_secret: 'pay_1_secret_x' },
    { response: 'dd9000' },
  ]);
});

test("the service's error code comes through; 4xx is final, 5xx may be retried", async (t) => {
  const s = await server((req, res) => (req.url.includes('pay_5')
    ? json(res, 503, { error: { code: 'storage_unavailable', message: 'later' } })
    : json(res, 402, { error: { code: 'insufficient_funds', message: 'the card holds 100 but the price is 1250', balance: 100 } })));
  t.after(s.close);
  const c = pluginClient({ api: s.url, pageOrigin: 'https://shop.example', fetch });
  const e = await c.initialize('pay_1', 's', 1, 'aa').catch((x) => x);
  assert.equal(e.code, 'insufficient_funds');
  assert.equal(e.status, 402);
  assert.equal(e.source, 'plugin');
  assert.equal(e.body.balance, 100);
  assert.equal(e.retryable, false);
  const e5 = await c.answer('pay_5', 's', 'aa').catch((x) => x);
  assert.equal(e5.code, 'storage_unavailable');
  assert.equal(e5.retryable, true);
});

test('no answer in time, no service, or no JSON: the extension says which', async (t) => {
  const s = await server((req, res) => {
    if (req.url.includes('slow')) return; // never answers
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<h1>Bad gateway</h1>');
  });
  t.after(s.close);
  const slow = pluginClient({ api: s.url, pageOrigin: 'https://shop.example', fetch, timeoutMs: 150 });
  const e1 = await slow.payment('slow', 's').catch((x) => x);
  assert.equal(e1.code, 'network_timeout');
  assert.equal(e1.retryable, true);
  const c = pluginClient({ api: s.url, pageOrigin: 'https://shop.example', fetch });
  const e2 = await c.payment('pay_1', 's').catch((x) => x);
  assert.equal(e2.code, 'service_error');
  assert.equal(e2.status, 502);
  assert.equal(e2.retryable, true);
  const closed = await server(() => {});
  await closed.close();
  const gone = pluginClient({ api: closed.url, pageOrigin: 'https://shop.example', fetch });
  const e3 = await gone.payment('pay_1', 's').catch((x) => x);
  assert.equal(e3.code, 'network_unreachable');
  assert.equal(e3.retryable, true);
});
