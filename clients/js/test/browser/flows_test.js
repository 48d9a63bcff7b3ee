// The client in headless Chromium against the real gateway: the flows of the
// Node integration tests from a page, three tabs of one user, offline/online,
// and a laptop's sleep simulated with page.clock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../integration/harness.js';
import { launch, pageServer, openPage, until } from './browser.js';

let stack, browser, web;
before(async () => {
  stack = await startStack({ gatewayArgs: ['--auth.expiry_warning_s=3', '--auth.jwt.leeway_s=0'] });
  web = await pageServer(stack);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  web?.server.close();
  await stack?.stop();
});

async function withPage(fn) {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, web.url);
    await fn(page, context);
    assert.deepEqual(page.errors, []);
  } finally {
    await context.close();
  }
}

test('from a page: token as a subprotocol, ECHO, errors, NOTIFY_ME then the NOTIFY push, a user push', () =>
  withPage(async (page) => {
    const r = await page.evaluate(async () => {
      const c = (window.c = make('pam'));
      c.connect();
      const w = await c.ready(10000);
      const echo = await c.request('ECHO', { text: 'hi' });
      const err = await c.request('NOPE').catch((e) => ({ name: e.name, code: e.code, message: e.message, command: e.command, traceId: e.traceId }));
      const notify = await c.request('NOTIFY_ME', { delayMs: 10, text: 'ready' });
      return { w, echo, err, notify, protocol: c._ws.protocol, url: c._ws.url };
    });
    assert.equal(r.w.userId, 'pam');
    assert.equal(r.protocol, 'wsgw', 'the gateway selected wsgw');
    assert.ok(!r.url.includes('token='), 'the token did not go in the URL');
    assert.deepEqual(r.echo, { text: 'hi' });
    assert.deepEqual([r.err.name, r.err.code, r.err.message, r.err.command], ['WsgwError', 404, 'unknown command', 'NOPE']);
    assert.ok(r.err.traceId);
    assert.equal(r.notify.scheduled, true);
    await until(page, () => c.pushes.some((m) => m.command === 'NOTIFY'));
    await stack.push('pam', 'NEWS', { title: 'hello' });
    await until(page, () => c.pushes.some((m) => m.command === 'NEWS'));
  }));

test('from a page: kick (4003) and revoke (4005) are terminal', () =>
  withPage(async (page) => {
    await page.evaluate(async () => {
      window.k = make('quinn').connect();
      window.v = make('rosa').connect();
      await Promise.all([k.ready(10000), v.ready(10000)]);
    });
    await stack.cli('ctl', 'kick', '--user', 'quinn', '--reason', 'bye');
    await stack.cli('ctl', 'revoke', '--user', 'rosa', '--reason', 'gone');
    await until(page, () => k.state === 'disconnected' && v.state === 'disconnected');
    await new Promise((r) => setTimeout(r, 1500)); // nothing may follow
    const r = await page.evaluate(() => ({ k: k.log.filter((e) => e[0] !== 'state'), v: v.log.filter((e) => e[0] !== 'state') }));
    assert.deepEqual(r.k.slice(1), [['disconnected', { code: 4003, reason: 'bye' }]]);
    assert.deepEqual(r.v.slice(1), [['disconnected', { code: 4005, reason: 'gone' }]]);
  }));

test('from a page: 5-second tokens are refreshed before they expire', () =>
  withPage(async (page) => {
    await page.evaluate(async () => {
      window.t = make('sam', { ttl: 5 }).connect();
      await t.ready(10000);
    });
    await until(page, () => t.named('auth').length >= 2, null, 20000);
    const r = await page.evaluate(async () => ({ connecting: t.named('connecting'), echo: await t.request('ECHO', 1), errors: t.named('error') }));
    assert.deepEqual(r.connecting, [], 'the connection never dropped');
    assert.equal(r.echo, 1);
    assert.deepEqual(r.errors, []);
  }));

test('three tabs of one user each receive a user push once', async () => {
  const context = await browser.newContext();
  try {
    const pages = [];
    for (let i = 0; i < 3; i++) {
      const p = await openPage(context, web.url);
      await p.evaluate(async () => {
        window.c = make('tess').connect();
        await c.ready(10000);
      });
      pages.push(p);
    }
    await stack.push('tess', 'NEWS', { n: 1 });
    await stack.push('tess', 'NEWS', { n: 2 });
    for (const p of pages) await until(p, () => c.pushes.filter((m) => m.command === 'NEWS').length >= 2);
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive now
    for (const p of pages) {
      assert.deepEqual(await p.evaluate(() => c.pushes.filter((m) => m.command === 'NEWS').map((m) => m.data.n)), [1, 2]);
      const ids = await p.evaluate(() => c.welcome.connId);
      assert.ok(ids);
      assert.deepEqual(p.errors, []);
    }
    const ids = await Promise.all(pages.map((p) => p.evaluate(() => c.welcome.connId)));
    assert.equal(new Set(ids).size, 3, 'three connections');
  } finally {
    await context.close();
  }
});

test('offline closes the socket the browser keeps open; online reconnects at once', () =>
  withPage(async (page, context) => {
    await page.evaluate(async () => {
      window.n = make('uma', { minReconnectDelay: 15000, maxReconnectDelay: 20000 }).connect();
      await n.ready(10000);
    });
    await context.setOffline(true);
    await until(page, () => n.state === 'connecting');
    await context.setOffline(false);
    // The backoff is at least 15 s; online skips it.
    await until(page, () => n.state === 'connected' && n.named('connected').length === 2, null, 10000);
    const r = await page.evaluate(() => n.named('connecting'));
    assert.equal(r[0].reason, 'offline');
  }));

test('a laptop that slept (page.clock fast-forward): the client probes at once, overdue deadlines fire at once', () =>
  withPage(async (page) => {
    await page.clock.install();
    await page.reload();
    await page.waitForFunction(() => window.pageReady === true, null, { timeout: 15000 });
    await page.evaluate(async () => {
      window.z = make('vic').connect();
      await z.ready(10000);
      window.healthSent = 0;
      const send = z._ws.send.bind(z._ws);
      z._ws.send = (s) => {
        if (JSON.parse(s).command === 'HEALTH') healthSent++;
        send(s);
      };
      // A request that waits for a connection that cannot come (getToken
      // never answers) until its 30 s deadline.
      window.w = make('wen', { getToken: () => new Promise(() => {}) });
      w.connect();
      w.request('ECHO', 1, { timeout: 30000 }).then(
        () => (window.queued = 'answered'),
        (e) => (window.queued = e.code)
      );
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await page.evaluate(() => [window.queued, healthSent].join()), ',0', 'nothing before the sleep');
    await page.clock.fastForward('05:00'); // the lid closed for five minutes
    await until(page, () => healthSent >= 1 && window.queued, null, 10000);
    assert.equal(await page.evaluate(() => window.queued), 'timeout');
    // The gateway answers the probe: the connection stays.
    await until(page, () => z.state === 'connected', null, 5000);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await page.evaluate(() => [z.state, z.named('connecting')]), ['connected', []]);
  }));

test('the demo page (clients/js/demo) connects, sends ECHO and shows the reply', () =>
  withPage(async (page) => {
    await page.goto(web.url.replace('/test/browser/page.html', '/demo/'));
    await until(page, () => document.getElementById('state').textContent === 'connected');
    await page.click('#send');
    await until(page, () => document.getElementById('replies').textContent.includes('< ECHO {"text":"hi"}'));
    await stack.push('alice', 'NEWS', { title: 'hello' });
    await until(page, () => document.getElementById('pushes').textContent.includes('NEWS {"title":"hello"}'));
  }));

test('in a module Web Worker: connect, ECHO, a push', () =>
  withPage(async (page) => {
    await page.evaluate(() => {
      window.fromWorker = [];
      const w = new Worker('/test/browser/worker.js', { type: 'module' });
      w.onmessage = (e) => fromWorker.push(e.data);
      w.onerror = (e) => fromWorker.push({ error: e.message || 'worker failed to load' });
      w.postMessage({ user: 'wanda' });
    });
    await until(page, () => fromWorker.length >= 1);
    const first = await page.evaluate(() => fromWorker[0]);
    assert.equal(first.error, undefined, first.error);
    assert.equal(first.welcome.userId, 'wanda');
    assert.deepEqual(first.echo, { from: 'worker' });
    await stack.push('wanda', 'NEWS', { n: 1 });
    await until(page, () => fromWorker.length >= 2);
    assert.deepEqual(await page.evaluate(() => fromWorker[1]), { news: { n: 1 }, state: 'connected' });
  }));
