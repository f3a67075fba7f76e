// The end-to-end driver for Debian's Firefox ESR: puppeteer-core over WebDriver BiDi
// (Playwright cannot drive Debian's Firefox; nothing is downloaded), the extension from
// dist/firefox installed as a temporary add-on. The same operations as
// driver-chromium.mjs, and pages with the methods of playwright-core's that the
// scenarios use (FirefoxPage), so one scenario runs in both browsers.
//
// What Firefox needs that Chromium does not:
// - a fixed moz-extension UUID for the add-on (pref extensions.webextensions.uuids; it is
//   random per profile otherwise), kept with its storage when the temporary add-on goes
//   at shutdown (keepUuidOnUninstall, keepStorageOnUninstall) so a restart finds what the
//   extension kept, as a shopper's installed add-on would;
// - --remote-allow-system-access: WebDriver may not navigate to moz-extension:// pages,
//   so the popup and the storage probe are opened from the browser window's chrome;
// - BiDi reports no navigation of extension pages, so a page's address is read from the
//   page itself until it is the one awaited (a short poll with a deadline: no event);
//   and puppeteer's own waits do not see changes in extension pages, so waits run in
//   the page on its DOM mutations (FirefoxPage.until).

import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import puppeteer from 'puppeteer-core';
import { firefoxId } from '../../tools/extension-id.mjs';

export const name = 'firefox';
export const FIREFOX = process.env.PURSE_FIREFOX ?? '/usr/bin/firefox-esr';
/** The add-on's moz-extension:// host in the test profiles. */
export const EXTENSION_UUID = '5b3f9c2e-8d41-4e6a-9b7c-2f0e1d3c4a56';
const BASE = `moz-extension://${EXTENSION_UUID}/`;

function prefs() {
  return {
    'extensions.webextensions.uuids': JSON.stringify({ [firefoxId()]: EXTENSION_UUID }),
    'extensions.webextensions.keepUuidOnUninstall': true,
    'extensions.webextensions.keepStorageOnUninstall': true,
    // The extension's console.* on stdout, for the run's extension.log.
    'devtools.console.stdout.chrome': true,
    'devtools.console.stdout.content': true,
    // Off the (closed) network.
    'network.connectivity-service.enabled': false,
    'network.captive-portal-service.enabled': false,
    'browser.safebrowsing.update.enabled': false,
    'extensions.update.enabled': false,
    'app.normandy.enabled': false,
  };
}

/** Starts Firefox on `profile` (a directory) with the add-on of `extensionDir`. */
export async function start({ profile, extensionDir, home, log }) {
  if (!existsSync(FIREFOX)) throw new Error(`no Firefox at ${FIREFOX} (apt-get install firefox-esr, or set PURSE_FIREFOX)`);
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    env: { ...process.env, HOME: home },
    args: ['--remote-allow-system-access'],
    extraPrefsFirefox: prefs(),
    defaultViewport: { width: 900, height: 700 },
  });
  const child = browser.process();
  for (const s of [child.stdout, child.stderr]) {
    let rest = '';
    s.on('data', (c) => {
      const lines = (rest + c.toString()).split('\n');
      rest = lines.pop();
      for (const l of lines) if (l.trim()) log(l);
    });
  }
  const id = await browser.installExtension(extensionDir);
  if (id !== firefoxId()) throw new Error(`the add-on was installed as ${id}, not ${firefoxId()}`);
  const pages = new Map(); // puppeteer page -> FirefoxPage
  const wrap = (p) => pages.get(p) ?? pages.set(p, new FirefoxPage(p)).get(p);
  const gone = new Promise((r) => browser.once('disconnected', r));
  let probe = null;

  /** The ids of the top-level browsing contexts with their addresses (from Firefox itself). */
  async function contexts() {
    const tree = await browser.connection.send('browsingContext.getTree', { maxDepth: 0 });
    return tree.result.contexts.map((c) => ({ id: c.context, url: c.url }));
  }

  /**
   * The page of the first browsing context not among `known` (ids) whose address ends
   * with `path`, once its document has loaded. Its address is taken from Firefox, never
   * by evaluating in the page before it is there: a page first evaluated while still at
   * its initial about:blank stays there for puppeteer.
   */
  async function nextPage(known, path, timeout) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const fresh = (await contexts()).filter((c) => !known.has(c.id));
      const hit = fresh.find((c) => c.url.startsWith(BASE) && new URL(c.url).pathname.endsWith(path));
      const pages = hit ? await browser.pages() : [];
      const found = pages.find((p) => p.mainFrame()._id === hit.id);
      if (found) {
        const page = wrap(found);
        await page.page.evaluate(() => document.readyState === 'complete' || new Promise((r) => addEventListener('load', r, { once: true })));
        return page;
      }
      if (Date.now() > deadline) throw new Error(`no new window at ${path} within ${timeout} ms (new ones at: ${fresh.map((c) => c.url).join(', ') || 'none'})`);
      await delay(25);
    }
  }

  const knownContexts = async () => new Set((await contexts()).map((c) => c.id));

  /** Runs `expression` in the browser window's chrome (system) scope; a string result is returned. */
  async function chrome(expression) {
    const tree = await browser.connection.send('browsingContext.getTree', { 'moz:scope': 'chrome' });
    const win = tree.result.contexts.find((c) => c.url === 'chrome://browser/content/browser.xhtml');
    if (!win) throw new Error('no browser window');
    const r = await browser.connection.send('script.evaluate', { expression, target: { context: win.context }, awaitPromise: true });
    if (r.result.type !== 'success') throw new Error(`in the browser's chrome: ${JSON.stringify(r.result.exceptionDetails?.text ?? r.result)}`);
    return r.result.result.value;
  }

  const d = {
    name,
    browser,
    pid: child.pid,
    newPage: async () => wrap(await browser.newPage()),

    /** Starts watching for the extension's next window at `path`; the returned function waits for it. */
    async watchWindow(path, { timeout = 15000 } = {}) {
      const known = await knownContexts();
      return () => nextPage(known, path, timeout);
    },

    async openExtensionPage(path) {
      const known = await knownContexts();
      await chrome(`gBrowser.selectedTab = gBrowser.addTab(${JSON.stringify(BASE + path)}, { triggeringPrincipal: Services.scriptSecurityManager.getSystemPrincipal() }); true`);
      return nextPage(known, path, 15000);
    },

    /** storage.local through an inert page of the extension (its style sheet). */
    async storageGet(key) {
      probe ??= d.openExtensionPage('ui/style.css');
      return (await probe).page.evaluate(async (k) => (await browser.storage.local.get(k))[k], key);
    },

    /** The browser console's messages (where Firefox puts a native host's stderr). */
    async consoleMessages() {
      return JSON.parse(await chrome('JSON.stringify(Services.console.getMessageArray().map((m) => m.message))'));
    },

    closed: () => gone,
    /** Closes the browser; its console (the extension's errors, the host's stderr) goes to the log first. */
    async close() {
      for (const m of await d.consoleMessages().catch(() => [])) log(`console: ${m}`);
      await browser.close();
    },
  };
  return d;
}

/** Runs in the page: resolves true once `pred(arg)` holds, false after `timeout` ms. */
function mutationWait(pred, arg, timeout) {
  return new Promise((resolve) => {
    let observer = null;
    let timer = null;
    const check = () => {
      let ok = false;
      try {
        ok = Boolean(pred(arg));
      } catch {
        // not yet (an element still missing)
      }
      if (ok) {
        observer?.disconnect();
        clearTimeout(timer);
        resolve(true);
      }
      return ok;
    };
    if (check()) return;
    observer = new MutationObserver(check);
    observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    timer = setTimeout(() => {
      observer.disconnect();
      resolve(false);
    }, timeout);
  });
}

/** A puppeteer page with the methods of playwright-core's Page the scenarios use. */
export class FirefoxPage {
  constructor(page) {
    this.page = page;
  }

  goto(url) {
    return this.page.goto(url);
  }

  /**
   * Waits until `predicate(arg)` holds in the page, checked at once and on each change
   * of its DOM (a MutationObserver in the page: an event, no polling).
   */
  async until(predicate, arg, timeout, what) {
    const held = await this.page.evaluate(`(${mutationWait})(${predicate}, ${JSON.stringify(arg ?? null)}, ${timeout})`);
    if (!held) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
  }

  waitForSelector(selector, { timeout = 30000 } = {}) {
    return this.until((s) => document.querySelector(s) !== null, selector, timeout, `selector ${selector}`);
  }

  /** Like Playwright: waits until the element is there and enabled, unless `force`. */
  async click(selector, { force = false } = {}) {
    if (!force) await this.until((s) => { const e = document.querySelector(s); return Boolean(e) && !e.disabled; }, selector, 30000, `${selector} enabled`);
    await this.page.click(selector);
  }

  /** Playwright's argument order: (fn, arg, options). */
  waitForFunction(fn, arg, { timeout = 30000 } = {}) {
    return this.until(fn, arg, timeout, String(fn));
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  textContent(selector) {
    return this.page.$eval(selector, (e) => e.textContent);
  }

  getAttribute(selector, attr) {
    return this.page.$eval(selector, (e, a) => e.getAttribute(a), attr);
  }

  isDisabled(selector) {
    return this.page.$eval(selector, (e) => e.disabled);
  }

  $$eval(selector, fn, arg) {
    return this.page.$$eval(selector, fn, arg);
  }

  screenshot(options) {
    return this.page.screenshot(options);
  }

  close() {
    return this.page.close();
  }
}
