// Debian's Chromium driven by playwright-core (never a downloaded browser): a
// persistent profile with the unpacked extension (dist/chromium) loaded, headless, with
// the flags that keep it off the network. The native host's manifest is already in
// the profile's NativeMessagingHosts/.

import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.PURSE_CHROMIUM ?? '/usr/lib/chromium/chromium';

export async function launch({ profile, extensionDir, env }) {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set PURSE_CHROMIUM)`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    ignoreDefaultArgs: ['--disable-extensions'],
    env: { ...process.env, ...env },
    viewport: { width: 900, height: 700 },
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--disable-extensions-except=${extensionDir}`, `--load-extension=${extensionDir}`,
    ],
  });
  let [worker] = context.serviceWorkers();
  worker ??= await context.waitForEvent('serviceworker');
  return { context, worker };
}
