/**
 * Debian's Chromium (installed by test/tools/chromium.sh in pretest), driven by playwright-core: no browser is ever
 * downloaded. Playwright starts it with a fresh temporary profile (--user-data-dir) and removes it on close.
 */
import { chromium, type Browser } from 'playwright-core';

/** The flags every browser test runs Chromium with (no network beyond loopback, no background services). */
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** Starts Debian's Chromium; each test opens its own context (its own cookies) with browser.newContext(). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
}
