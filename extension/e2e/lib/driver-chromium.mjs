// The end-to-end driver for Debian's Chromium (playwright-core over CDP, lib/browser.mjs):
// the few operations the scenarios need beyond a page's own (open a page, catch the
// extension's next window, open one of its pages, read its storage, its console, close).
// Pages are playwright-core's own; driver-firefox.mjs gives its pages the same methods.
// `context` and `worker` stay reachable for the Chromium-only hostile scenarios.

import { chromiumId } from '../../tools/extension-id.mjs';
import { launch } from './browser.mjs';

export const name = 'chromium';

/** Starts Chromium on `profile` with the unpacked extension in `extensionDir`. */
export async function start({ profile, extensionDir, home, log }) {
  const { context, worker } = await launch({ profile, extensionDir, env: { HOME: home } });
  const id = chromiumId();
  const d = {
    name,
    context,
    worker,
    /** The extension's console (its service worker). */
    follow(w) {
      w.on('console', (m) => log(`${m.type()} ${m.text()}`));
    },
    newPage: () => context.newPage(),

    /** Starts watching for the extension's next window at `path`; the returned function waits for it. */
    async watchWindow(path, { timeout = 15000 } = {}) {
      const opened = context.waitForEvent('page', { timeout }).then(async (w) => {
        await w.waitForURL((u) => u.pathname.endsWith(path), { timeout });
        return w;
      });
      opened.catch(() => {}); // awaited by the caller; no unhandled rejection meanwhile
      return () => opened;
    },

    /** One of the extension's pages in a new tab. */
    async openExtensionPage(path) {
      const p = await context.newPage();
      await p.goto(`chrome-extension://${id}/${path}`);
      return p;
    },

    /** A key of the extension's storage.local. */
    storageGet: (key) => d.worker.evaluate(async (k) => (await chrome.storage.local.get(k))[k], key),

    /** Settles when the browser has gone (closed or killed). */
    closed: () => new Promise((r) => context.once('close', r)),
    close: () => context.close(),
  };
  d.follow(worker);
  return d;
}
