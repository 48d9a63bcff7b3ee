// A page keeps sending requests while its only gateway restarts (SIGTERM:
// drain, then a new process on the same port): the client goes connecting,
// comes back by itself, and every request is settled.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor } from '../integration/harness.js';
import { launch, pageServer, openPage, until } from './browser.js';

let stack, browser, web;
before(async () => {
  stack = await startStack();
  web = await pageServer(stack);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  web?.server.close();
  await stack?.stop();
});

test('a gateway restart during traffic: the page reconnects by itself and no request is left hanging', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, web.url);
    await page.evaluate(async () => {
      window.c = make('walt', { timeout: 20000 }).connect();
      await c.ready(10000);
      window.stats = { ok: 0, failed: [], pending: 0, stop: false };
      // One ECHO at a time, paced under its rate limit.
      window.loop = (async () => {
        for (let n = 0; !stats.stop && n < 100000; n++) {
          stats.pending++;
          const wait = new Promise((r) => setTimeout(r, 70));
          await c.request('ECHO', n).then(
            (r) => (r === n ? stats.ok++ : stats.failed.push(['wrong echo', n, r])),
            (e) => stats.failed.push([e.code, e.message, e.sent, e.retryable])
          );
          stats.pending--;
          await wait;
        }
      })();
    });
    await until(page, () => stats.ok > 30);
    const old = stack.gateways[0];
    const first = await page.evaluate(() => c.welcome.connId);
    old.proc.kill('SIGTERM');
    await waitFor(() => !old.alive(), 30000, 'the gateway to drain and exit');
    await until(page, () => c.state === 'connecting', null, 10000);
    const fresh = await stack.gateway('gw-restarted', ['--server.port=' + old.port]);
    assert.equal(fresh.port, old.port);
    await until(page, () => c.state === 'connected' && c.welcome.gateway === 'gw-restarted', null, 30000);
    const at = await page.evaluate(() => stats.ok);
    await until(page, (n) => stats.ok > n + 30, at, 20000);
    const r = await page.evaluate(async () => {
      stats.stop = true;
      await loop;
      return { ok: stats.ok, failed: stats.failed, pending: stats.pending, connId: c.welcome.connId, resets: c.named('reset') };
    });
    assert.notEqual(r.connId, first);
    assert.equal(r.pending, 0);
    // Requests in flight when the old gateway closed may fail, retryable; a
    // request the draining gateway refused says so (502). Nothing else.
    for (const f of r.failed) {
      assert.ok((f[0] === 'closed' && f[2] && f[3]) || (f[0] === 502 && /draining/.test(f[1])), `unexpected failure ${JSON.stringify(f)}`);
    }
    assert.ok(r.failed.length <= 2, `at most the request in flight at each close failed: ${JSON.stringify(r.failed)}`);
    // This gateway has no recovery: the app is told to reload its state.
    assert.deepEqual(r.resets, [{ key: '*', recovered: false, reason: 'unsupported' }]);
    // Chromium logs each refused attempt while the gateway is down; nothing else.
    assert.deepEqual(page.errors.filter((e) => !/^WebSocket connection to .* failed/.test(e)), []);
  } finally {
    await context.close();
  }
});
