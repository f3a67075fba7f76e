// The WebExtension API object of the browser we run in: `browser` (Firefox) or
// `chrome` (Chromium); both return promises in Manifest V3.

export const ext = globalThis.browser ?? globalThis.chrome;
