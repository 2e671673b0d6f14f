// browser.mjs — launches Debian's Chromium through playwright-core with the
// flags of shared/design/recording.md ("Chromium flags"), one fresh
// user-data-dir per context. Never downloads a browser.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  throw new Error(`playwright-core is not installed: run \`npm ci --prefix tests/e2e\` (${e.message})`);
}

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** The flags of recording.md, minus --user-data-dir (given per context) and the fake-media ones (options). */
const BASE_FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--autoplay-policy=no-user-gesture-required',
];

export function chromiumAvailable() {
  try { fs.accessSync(CHROMIUM, fs.constants.X_OK); return true; } catch { return false; }
}

/**
 * A browser context of its own (its own process and fresh profile).
 * Options: fakeDevices (default true), fakeUi (default true, accepting the
 * permission prompt; false with denyPrompts denies it), lang, viewport.
 * Returns {context, page, close}.
 */
export async function launch({
  fakeDevices = true, fakeUi = true, denyPrompts = false, lang = 'es-VE', viewport = { width: 1280, height: 900 },
  extraArgs = [],
} = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'testigo-chromium-'));
  const args = [...BASE_FLAGS, `--lang=${lang}`, ...extraArgs];
  if (fakeDevices) args.push('--use-fake-device-for-media-stream');
  if (fakeUi) args.push('--use-fake-ui-for-media-stream');
  if (denyPrompts) args.push('--deny-permission-prompts');
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    ignoreDefaultArgs: ['--headless'],
    locale: lang,
    viewport,
    timeout: 120000, // a loaded CI machine starts Chromium slowly
  });
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
    if (process.env.TESTIGO_E2E_VERBOSE) console.error(`# [browser ${m.type()}] ${m.text()}`);
  });
  return {
    context,
    page,
    errors,
    async close() {
      try { await context.close(); } catch { /* already gone */ }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/* Errors of page.evaluate while the page navigates or reloads: retried. */
const TRANSIENT = /Execution context was destroyed|Cannot find context|navigat|Target closed unexpectedly|frame was detached/i;

/**
 * Polls @fn (in the page) until it returns a truthy value, or throws after
 * @timeout ms (generous by default: a loaded two-core machine runs the
 * browsers slowly). An evaluation cut short by a navigation is retried.
 */
export async function until(page, fn, arg, { timeout = 30000, interval = 200, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await page.evaluate(fn, arg);
    } catch (e) {
      if (!TRANSIENT.test(String(e?.message)) || page.isClosed()) throw e;
      last = `(${String(e.message).split('\n')[0]})`;
      await new Promise((r) => setTimeout(r, interval));
      continue;
    }
    if (last) return last;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${what} after ${timeout} ms (last: ${JSON.stringify(last)})`);
}
