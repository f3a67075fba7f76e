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
//   page itself until it is the one awaited (a short poll with a deadline: no event).

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

  /** The next page target that is not among `known`, once its address ends with `path`. */
  async function nextPage(known, path, timeout) {
    const deadline = Date.now() + timeout;
    const t = await browser.waitForTarget((t) => t.type() === 'page' && !known.has(t), { timeout });
    const w = wrap(await t.page());
    for (;;) {
      const at = await w.page.evaluate(() => document.readyState === 'complete' && location.href).catch(() => false);
      if (at && new URL(at).pathname.endsWith(path)) return w;
      if (Date.now() > deadline) throw new Error(`the new window did not open ${path} within ${timeout} ms (at ${at})`);
      await delay(25);
    }
  }

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

    nextWindow(path, { timeout = 15000 } = {}) {
      return nextPage(new Set(browser.targets()), path, timeout);
    },

    async openExtensionPage(path) {
      const known = new Set(browser.targets());
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

/** A puppeteer page with the methods of playwright-core's Page the scenarios use. */
export class FirefoxPage {
  constructor(page) {
    this.page = page;
  }

  goto(url) {
    return this.page.goto(url);
  }

  waitForSelector(selector, { timeout = 30000 } = {}) {
    return this.page.waitForSelector(selector, { timeout });
  }

  /** Like Playwright: waits until the element is there and enabled, unless `force`. */
  async click(selector, { force = false } = {}) {
    if (!force) await this.page.waitForFunction((s) => { const e = document.querySelector(s); return e && !e.disabled; }, { polling: 'mutation' }, selector);
    await this.page.click(selector);
  }

  /** Playwright's argument order: (fn, arg, options). */
  waitForFunction(fn, arg, { timeout = 30000 } = {}) {
    return this.page.waitForFunction(fn, { timeout, polling: 'mutation' }, arg);
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
