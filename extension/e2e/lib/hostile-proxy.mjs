// The hostile shop's front: a small HTTP proxy between the browser and the real shop
// plugin (the demo shop hands it to checkout.js as the plugin's public URL). It forwards
// everything unchanged until a test installs a rule: a rule sees each request and may
// answer it itself (a proxy's HTML 502, a TICK sent at once, another card record asked
// for), or forward it and change the plugin's reply. Real sockets and real statuses: the
// extension cannot tell it from a misbehaving shop or a proxy on the way.

import http from 'node:http';
import { once } from 'node:events';

/** Starts the proxy in front of `upstream` (http://host:port). Returns {url, use, clear, seen, close}. */
export async function startProxy(upstream) {
  let rule = null;
  const seen = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const ctx = {
      method: req.method,
      path: req.url,
      body,
      json: () => JSON.parse(body.toString('utf8')),
      forward: () => forward(upstream, req, body),
    };
    seen.push({ method: req.method, path: req.url });
    try {
      const out = (rule && (await rule(ctx))) || (await ctx.forward());
      if (out.reset) return req.socket.destroy(); // the connection drops, no answer at all
      res.writeHead(out.status, out.headers);
      res.end(out.body);
    } catch (e) {
      res.writeHead(599, { 'content-type': 'text/plain' });
      res.end(`proxy rule failed: ${e.message}`);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    /** Installs a rule: async (ctx) => a response {status, headers, body}, {reset: true} to drop the connection, or nothing to forward. */
    use(f) { rule = f; },
    clear() { rule = null; },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

function forward(upstream, req, body) {
  const u = new URL(req.url, upstream);
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: u.host };
    delete headers['accept-encoding'];
    const out = http.request(u, { method: req.method, headers }, async (r) => {
      const chunks = [];
      for await (const c of r) chunks.push(c);
      const h = { ...r.headers };
      delete h['content-length'];
      delete h['transfer-encoding'];
      delete h.connection;
      delete h['keep-alive'];
      resolve({ status: r.statusCode, headers: h, body: Buffer.concat(chunks) });
    });
    out.on('error', reject);
    out.end(body);
  });
}

/** A response with a JSON body (the plugin's own form). */
export function jsonResponse(status, value, headers = {}) {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

/** A proxy's or gateway's own error page. */
export function htmlPage(status, title) {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body: `<!doctype html><html><head><title>${status} ${title}</title></head><body><center><h1>${status} ${title}</h1></center><hr><center>nginx</center></body></html>` };
}

/** The JSON of a forwarded reply, changed by `f`, as a response again. */
export function rewriteJson(reply, f) {
  const v = JSON.parse(reply.body.toString('utf8'));
  const changed = f(v) ?? v;
  return { status: reply.status, headers: { ...reply.headers, 'content-type': 'application/json' }, body: JSON.stringify(changed) };
}
