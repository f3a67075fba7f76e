// Secure origins and the sender's origin (lib/origin.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { apiBase, displayHost, isSecureUrl, senderOrigin } from '../src/lib/origin.js';

test('secure origins only: https, and http on loopback for development', () => {
  for (const u of ['https://shop.example/p', 'http://localhost:8080/', 'http://127.0.0.1:9/x', 'http://[::1]:3000/']) assert.ok(isSecureUrl(u), u);
  for (const u of ['http://shop.example/', 'http://127.0.0.2/', 'http://localhost.evil.example/', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,x', 'chrome-extension://abc/x', 'not a url']) assert.ok(!isSecureUrl(u), u);
});

test("the sender's origin comes from what the browser reports", () => {
  assert.equal(senderOrigin({ origin: 'https://shop.example', url: 'https://evil.example/' }), 'https://shop.example');
  assert.equal(senderOrigin({ url: 'https://shop.example/checkout?x=1#y' }), 'https://shop.example');
  assert.equal(senderOrigin({ tab: { url: 'http://127.0.0.1:8080/p' } }), 'http://127.0.0.1:8080');
  assert.equal(senderOrigin({ origin: 'http://shop.example' }), null, 'an insecure origin is refused, not skipped');
  assert.equal(senderOrigin({ origin: 'null', url: 'https://shop.example/' }), 'https://shop.example');
  assert.equal(senderOrigin({}), null);
});

test('the payment service URL a page names', () => {
  assert.equal(apiBase('https://pay.shop.example/'), 'https://pay.shop.example');
  assert.equal(apiBase('https://shop.example/purse/'), 'https://shop.example/purse');
  assert.equal(apiBase('http://127.0.0.1:8443'), 'http://127.0.0.1:8443');
  for (const bad of ['http://pay.shop.example', 'https://a@b.example', 'https://b.example/?q=1', 'https://b.example/#f', 'ftp://b.example', 42, 'https://' + 'a'.repeat(3000)]) assert.equal(apiBase(bad), null, String(bad).slice(0, 40));
  assert.equal(displayHost('https://shop.example:8443'), 'shop.example:8443');
});
