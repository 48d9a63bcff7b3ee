// request(): replies, errors, timeouts, the queue while disconnected, no
// replay after a drop, aborts; on(): handlers, removal, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WsgwError } from '../../src/client.js';
import { setup, settle } from './harness.js';

test('a reply with code 0 resolves with data; another code rejects with code, message, traceId, command', async () => {
  const h = setup();
  const ws = await h.up();
  const a = h.client.request('ECHO', { text: 'hi' });
  const b = h.client.request('NOPE');
  const [ea, eb] = ws.sent.slice(-2);
  assert.equal(ea.command, 'ECHO');
  assert.deepEqual(ea.data, { text: 'hi' });
  assert.notEqual(ea.traceId, eb.traceId);
  ws.reply(eb, null, 404, 'unknown command');
  ws.reply(ea, { text: 'hi' });
  assert.deepEqual(await a, { text: 'hi' });
  const err = await b.catch((e) => e);
  assert.ok(err instanceof WsgwError);
  assert.equal(err.code, 404);
  assert.equal(err.message, 'unknown command');
  assert.equal(err.traceId, eb.traceId);
  assert.equal(err.command, 'NOPE');
});

test('a timed-out request rejects, and its late reply is not taken for a push', async () => {
  const h = setup();
  const ws = await h.up();
  const pushes = [];
  h.client.on('ECHO', (d) => pushes.push(d));
  const p = h.client.request('ECHO', 1, { timeout: 2000 }).catch((e) => e);
  const sent = ws.last('ECHO');
  await h.advance(2100);
  const err = await p;
  assert.equal(err.code, 'timeout');
  assert.equal(err.sent, true);
  ws.reply(sent, 1);
  ws.push({ command: 'ECHO', traceId: 'svc-1', data: 'a real push' });
  assert.deepEqual(pushes, ['a real push']);
});

test('requests while disconnected wait for the connection, then go in order', async () => {
  const h = setup({ random: () => 0 });
  h.client.connect();
  await settle();
  const a = h.client.request('ECHO', 1);
  const b = h.client.request('ECHO', 2);
  await settle();
  h.ws.accept();
  assert.deepEqual(h.ws.sent.map((m) => m.data), [1, 2]);
  h.ws.sent.forEach((m) => h.ws.reply(m, m.data));
  assert.deepEqual(await Promise.all([a, b]), [1, 2]);
});

test('a queued request that waits past its timeout fails (sent: false) and is not sent later', async () => {
  const h = setup();
  h.client.connect();
  await settle();
  const p = h.client.request('ECHO', 1, { timeout: 1000 }).catch((e) => e);
  await h.advance(1100);
  const err = await p;
  assert.equal(err.code, 'timeout');
  assert.equal(err.sent, false);
  h.ws.accept();
  assert.equal(h.ws.sent.length, 0);
});

test('the queue is bounded: past queueLimit a request fails at once with queue_full', async () => {
  const h = setup({ queueLimit: 3 });
  h.client.connect();
  await settle();
  const queued = [1, 2, 3].map((n) => h.client.request('ECHO', n));
  const err = await h.client.request('ECHO', 4).catch((e) => e);
  assert.equal(err.code, 'queue_full');
  const q = await h.client.request('ECHO', 5, { queue: false }).catch((e) => e);
  assert.equal(q.code, 'disconnected');
  h.ws.accept();
  assert.deepEqual(h.ws.sent.map((m) => m.data), [1, 2, 3]);
  h.ws.sent.forEach((m) => h.ws.reply(m, m.data));
  await Promise.all(queued);
});

test('requests in flight when the connection drops fail with a retryable closed error and are never replayed', async () => {
  const h = setup({ random: () => 0 });
  const ws = await h.up();
  const p = h.client.request('ECHO', 'x');
  ws.serverClose(1006);
  const err = await p.catch((e) => e);
  assert.equal(err.code, 'closed');
  assert.equal(err.retryable, true);
  assert.equal(err.sent, true);
  await h.advance(1000);
  h.ws.accept();
  assert.equal(h.ws.sent.length, 0, 'nothing replayed on the new connection');
});

test('request after a terminal close rejects at once; disconnect() fails queued requests', async () => {
  const h = setup();
  h.client.connect();
  await settle();
  const queued = h.client.request('ECHO', 1);
  h.client.disconnect();
  assert.equal((await queued.catch((e) => e)).code, 'disconnected');
  assert.equal((await h.client.request('ECHO', 2).catch((e) => e)).code, 'disconnected');
});

test('an AbortSignal cancels a request, before or after it was sent', async () => {
  const h = setup();
  const ws = await h.up();
  const ac = new AbortController();
  const p = h.client.request('ECHO', 1, { signal: ac.signal });
  ac.abort();
  assert.equal((await p.catch((e) => e)).code, 'aborted');
  const pre = await h.client.request('ECHO', 2, { signal: ac.signal }).catch((e) => e);
  assert.equal(pre.code, 'aborted');
  assert.equal(ws.sent.length, 1, 'an aborted signal sends nothing');
});

test('on(): the same handler twice is called once; the returned function removes it', async () => {
  const h = setup();
  const ws = await h.up();
  const got = [];
  const f = (d, m) => got.push([d, m.command]);
  const off1 = h.client.on('NEWS', f);
  h.client.on('NEWS', f);
  const all = [];
  h.client.on('*', (d, m) => all.push(m.command));
  ws.push({ command: 'NEWS', data: 1 });
  assert.deepEqual(got, [[1, 'NEWS']]);
  off1();
  ws.push({ command: 'NEWS', data: 2 });
  assert.deepEqual(got, [[1, 'NEWS']]);
  assert.deepEqual(all, ['NEWS', 'NEWS']);
});

test('a handler that throws is reported on the error event; the other handlers still run', async () => {
  const h = setup();
  const ws = await h.up();
  const got = [];
  h.client.on('NEWS', () => {
    throw new Error('app bug');
  });
  h.client.on('NEWS', (d) => got.push(d));
  ws.push({ command: 'NEWS', data: 7 });
  assert.deepEqual(got, [7]);
  const e = h.named('error').at(-1);
  assert.equal(e.error.message, 'app bug');
  assert.equal(e.where, 'NEWS');
});

test('a frame that is not JSON is reported, not thrown', async () => {
  const h = setup();
  const ws = await h.up();
  ws.onmessage({ data: '{oops' });
  assert.equal(h.named('error').at(-1).where, 'message');
  assert.equal(h.client.state, 'connected');
});

test('ready() resolves with WELCOME, times out, and rejects when the client stops', async () => {
  const h = setup();
  assert.equal((await h.client.ready(10).catch((e) => e)).code, 'disconnected');
  h.client.connect();
  await settle();
  const t = h.client.ready(1000).catch((e) => e);
  await h.advance(1100);
  assert.equal((await t).code, 'timeout');
  const r = h.client.ready(5000);
  h.ws.accept({ connId: 'gw.x' });
  assert.equal((await r).connId, 'gw.x');
  h.ws.serverClose(4003, 'kicked');
  h.client.connect();
  await settle();
  const s = h.client.ready(5000);
  h.ws.serverClose(4005);
  assert.equal((await s.catch((e) => e)).code, 'disconnected');
});
