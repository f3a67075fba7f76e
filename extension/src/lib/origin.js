// Which origins may ask for a payment and which payment-service URLs the extension
// will call: secure origins only (https), plus http://localhost and http://127.0.0.1
// for development. The origin shown to the shopper is the one the browser reports for
// the sending frame, never one a page claims.

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function parse(url) {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** Whether a URL's origin may take part in a payment. */
export function isSecureUrl(url) {
  const u = parse(url);
  if (u === null) return false;
  if (u.protocol === 'https:') return u.hostname !== '';
  return u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname);
}

/**
 * The origin of the frame that sent a message, from what the browser says about the
 * sender (runtime.MessageSender): `origin` where the browser gives it, else the frame's
 * URL. Null when neither is a secure origin.
 */
export function senderOrigin(sender) {
  const candidates = [sender?.origin, sender?.url, sender?.tab?.url];
  for (const c of candidates) {
    if (typeof c !== 'string' || c === 'null') continue;
    const u = parse(c);
    if (u === null) continue;
    return isSecureUrl(u.href) ? u.origin : null;
  }
  return null;
}

/**
 * The payment service's base URL a page names (`https://pay.shop.example` or with a
 * path prefix), normalised without a trailing slash; null unless it is secure, has no
 * credentials, query or fragment.
 */
export function apiBase(url) {
  if (typeof url !== 'string' || url.length > 2048) return null;
  const u = parse(url);
  if (u === null || !isSecureUrl(u.href)) return null;
  if (u.username || u.password || u.search || u.hash) return null;
  return u.origin + u.pathname.replace(/\/+$/, '');
}

/** The host part of an origin, for the big line of the confirmation ("shop.example"). */
export function displayHost(origin) {
  const u = parse(origin);
  return u === null ? String(origin) : u.host;
}
