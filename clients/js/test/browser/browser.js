// Headless Chromium (Debian's chromium, driven by playwright-core; no browser
// download) and the static server that serves the test page.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { staticServer } from '../../demo/serve.mjs';

export const CHROMIUM =
  process.env.WSGW_CHROMIUM || ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));

export async function launch() {
  if (!CHROMIUM) throw new Error('no chromium: tools/test installs Debian\'s chromium package');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// The static server for the stack: the test page's gateway is config.gateway
// (change it and the next page load uses the new one).
export async function pageServer(stack) {
  const config = { gateway: stack.gateways[0].url };
  const server = await staticServer({
    root: fileURLToPath(new URL('../../', import.meta.url)),
    mint: (user, ttl) => stack.token(user, ttl),
    config,
  });
  return { server, config, url: `http://127.0.0.1:${server.address().port}/test/browser/page.html` };
}

// A new page on the test page, with its console errors kept for failure messages.
export async function openPage(context, url) {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: 15000 });
  return page;
}

// Polls fn in the page until it returns something truthy (bounded).
export const until = (page, fn, arg, ms = 15000) => page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
