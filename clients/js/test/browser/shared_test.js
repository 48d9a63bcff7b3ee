// The shared-connection mode: the tabs of an origin elect a leader (Web
// Locks) that holds the only WebSocket and relays pushes, states and requests
// (BroadcastChannel); when the leader tab closes another takes over.
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

const news = (p) => p.evaluate(() => c.pushes.filter((m) => m.command === 'NEWS').map((m) => m.data.n));
const leaders = (pages) => Promise.all(pages.map((p) => p.evaluate(() => c.leader)));

async function tabs(context, n, user) {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const p = await openPage(context, web.url);
    await p.evaluate((u) => {
      window.c = make(u, {}, true).connect();
    }, user);
    pages.push(p);
  }
  for (const p of pages) await until(p, () => c.state === 'connected');
  return pages;
}

test('three tabs share one connection; pushes and requests are relayed; a new leader takes over when the leader tab closes', async () => {
  const context = await browser.newContext();
  try {
    const pages = await tabs(context, 3, 'xena');
    const lead = await leaders(pages);
    assert.equal(lead.filter(Boolean).length, 1, `one leader: ${lead}`);
    // One connection: every tab's WHOAMI is answered on the leader's connection.
    const conns = await Promise.all(pages.map((p) => p.evaluate(() => c.request('WHOAMI').then((w) => w.connId))));
    assert.equal(new Set(conns).size, 1, `one connection, got ${conns}`);

    await stack.push('xena', 'NEWS', { n: 1 });
    for (const p of pages) await until(p, () => c.pushes.some((m) => m.command === 'NEWS'));

    // The leader tab closes: the browser frees its lock, another tab leads.
    const leaderPage = pages[lead.indexOf(true)];
    const rest = pages.filter((p) => p !== leaderPage);
    await leaderPage.close();
    await waitFor(async () => (await leaders(rest)).filter(Boolean).length === 1, 20000, 'a new leader');
    for (const p of rest) await until(p, () => c.state === 'connected', null, 20000);
    const after = await leaders(rest);
    assert.equal(after.filter(Boolean).length, 1, `one new leader: ${after}`);
    const conns2 = await Promise.all(rest.map((p) => p.evaluate(() => c.request('WHOAMI').then((w) => w.connId))));
    assert.equal(new Set(conns2).size, 1);
    assert.notEqual(conns2[0], conns[0], 'a new connection');

    // This gateway has no recovery: every tab is told that pushes sent during
    // the takeover may be missing.
    for (const p of rest) await until(p, () => c.named('reset').some((r) => r.key === '*'));

    await stack.push('xena', 'NEWS', { n: 2 });
    for (const p of rest) await until(p, () => c.pushes.filter((m) => m.command === 'NEWS').length >= 2);
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive now
    for (const p of rest) {
      assert.deepEqual(await news(p), [1, 2], 'each push once in each tab');
      assert.deepEqual(p.errors, []);
    }
  } finally {
    await context.close();
  }
});

test('the leader tab closes mid-stream: nothing lost, nothing twice (needs recovery on the gateway)', async (t) => {
  const context = await browser.newContext();
  try {
    const pages = await tabs(context, 3, 'yves');
    const recovery = await pages[0].evaluate(() => !!(c.welcome && c.welcome.recovery));
    if (!recovery) {
      t.skip('the gateway has no recovery yet: its WELCOME carries no recovery field');
      return;
    }
    const lead = await leaders(pages);
    const leaderPage = pages[lead.indexOf(true)];
    const rest = pages.filter((p) => p !== leaderPage);
    const pub = await stack.publisher();
    let n = 0;
    for (; n < 100; n++) pub.pub('wsgw.user.yves', { command: 'NEWS', data: { n } });
    await pub.flush();
    await leaderPage.close();
    for (; n < 200; n++) {
      pub.pub('wsgw.user.yves', { command: 'NEWS', data: { n } });
      if (n % 10 === 9) await pub.flush();
    }
    await pub.flush();
    for (const p of rest) await until(p, (total) => c.pushes.filter((m) => m.command === 'NEWS').length >= total, n, 30000);
    await new Promise((r) => setTimeout(r, 300));
    for (const p of rest) assert.deepEqual(await news(p), Array.from({ length: n }, (_, i) => i));
  } finally {
    await context.close();
  }
});
