// getToken before every attempt, how the token travels, and the refresh
// flow (TOKEN_EXPIRING -> getToken -> AUTH), one at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnauthorizedError } from '../../src/client.js';
import { setup, settle } from './harness.js';

const expiring = (ws) => ws.push({ command: 'TOKEN_EXPIRING', data: { expiresAt: 1, expiresInMs: 60000 } });

test('the token travels as a subprotocol next to wsgw; other characters go in the query', async () => {
  const h = setup({ getToken: async () => 'eyJhbGciOi.eyJzdWIi.c2ln-_~' });
  h.client.connect();
  await settle();
  assert.deepEqual(h.ws.protocols, ['wsgw', 'bearer.eyJhbGciOi.eyJzdWIi.c2ln-_~']);
  assert.equal(h.ws.url.searchParams.get('token'), null);

  const q = setup({ getToken: async () => 'a+b/c==' }, 'ws://gw.test/ws?x=1');
  q.client.connect();
  await settle();
  assert.deepEqual(q.ws.protocols, ['wsgw']);
  assert.equal(q.ws.url.searchParams.get('token'), 'a+b/c==');
  assert.equal(q.ws.url.searchParams.get('x'), '1', 'the url keeps its own parameters');

  const forced = setup({ tokenVia: 'query' });
  forced.client.connect();
  await settle();
  assert.equal(forced.ws.url.searchParams.get('token'), 'tok1');

  const none = setup({ getToken: undefined }, 'ws://gw.test/ws?user=alice');
  none.client.connect();
  await settle();
  assert.deepEqual(none.ws.protocols, ['wsgw']);
  assert.equal(none.ws.url.search, '?user=alice');
});

test('getToken returning null or throwing UnauthorizedError is terminal', async () => {
  for (const getToken of [async () => null, async () => { throw new UnauthorizedError('logged out'); }]) {
    const h = setup({ getToken });
    h.client.connect();
    await settle();
    assert.equal(h.sockets.length, 0);
    assert.equal(h.client.state, 'disconnected');
    assert.equal(h.named('disconnected')[0].code, 0);
    assert.match(h.named('disconnected')[0].reason, /unauthorized/);
  }
});

test('getToken failing otherwise retries with backoff and reports the error', async () => {
  let n = 0;
  const h = setup({
    random: () => 0,
    getToken: async () => {
      if (++n < 3) throw new Error('auth server down');
      return 'ok-token';
    },
  });
  h.client.connect();
  await h.advance(2000);
  assert.equal(n, 3);
  assert.equal(h.sockets.length, 1);
  assert.equal(h.ws.token, 'ok-token');
  assert.equal(h.named('error').length, 2);
  assert.equal(h.named('error')[0].where, 'getToken');
});

test('TOKEN_EXPIRING: getToken, then AUTH with the token field on the same connection', async () => {
  const h = setup();
  const ws = await h.up();
  expiring(ws);
  await settle();
  const auth = ws.last('AUTH');
  assert.equal(auth.token, 'tok2');
  assert.deepEqual(h.tokens, ['connect', 'expiring']);
  ws.reply(auth, { tokenExpiresAt: 123 });
  await settle();
  assert.deepEqual(h.named('auth'), [{ tokenExpiresAt: 123 }]);
});

test('one refresh at a time: a second TOKEN_EXPIRING while one runs starts nothing', async () => {
  let release;
  let calls = 0;
  const h = setup({
    getToken: async (ctx) => {
      calls++;
      if (ctx.reason === 'expiring') await new Promise((r) => (release = r));
      return 'tok' + calls;
    },
  });
  const ws = await h.up();
  expiring(ws);
  expiring(ws);
  await settle();
  expiring(ws);
  await settle();
  assert.equal(calls, 2, 'one getToken for three warnings');
  release();
  await settle();
  assert.equal(ws.sent.filter((m) => m.command === 'AUTH').length, 1);
});

test('a refresh whose getToken finishes after a reconnect: the new connection uses that token, no AUTH on it', async () => {
  let release;
  let calls = 0;
  const h = setup({
    random: () => 0,
    getToken: (ctx) => {
      calls++;
      if (ctx.reason === 'expiring') return new Promise((r) => (release = () => r('fresh')));
      return Promise.resolve('tok' + calls);
    },
  });
  const ws1 = await h.up();
  expiring(ws1);
  await settle();
  ws1.serverClose(1006); // the connection drops while getToken is out
  await h.advance(1000);
  assert.equal(h.sockets.length, 1, 'the reconnect waits for the getToken in flight (single flight)');
  release();
  await settle();
  assert.equal(h.sockets.length, 2);
  assert.equal(h.ws.token, 'fresh');
  h.ws.accept();
  await h.advance(1000);
  assert.equal(h.ws.sent.filter((m) => m.command === 'AUTH').length, 0, 'no AUTH from the older connection');
  assert.equal(ws1.sent.filter((m) => m.command === 'AUTH').length, 0);
  assert.equal(calls, 2, 'no second refresh chain');
});

test('a refused AUTH retries with backoff; getToken null during refresh is terminal', async () => {
  let n = 0;
  const h = setup({ random: () => 0, getToken: async () => (++n < 5 ? 'tok' + n : null) });
  const ws = await h.up();
  expiring(ws);
  await settle();
  ws.reply(ws.last('AUTH'), null, 401, 'invalid token: bad signature');
  await settle();
  assert.equal(h.named('error').at(-1).error.code, 401);
  await h.advance(900);
  assert.equal(ws.sent.filter((m) => m.command === 'AUTH').length, 1, 'waits its backoff');
  await h.advance(200);
  assert.equal(ws.sent.filter((m) => m.command === 'AUTH').length, 2);
  ws.reply(ws.last('AUTH'), null, 502, 'auth service did not answer');
  await h.advance(2100);
  assert.equal(ws.sent.filter((m) => m.command === 'AUTH').length, 3);
  ws.reply(ws.last('AUTH'), null, 401, 'no');
  await h.advance(5000);
  assert.equal(h.client.state, 'disconnected', 'getToken returned null');
  assert.match(h.named('disconnected')[0].reason, /unauthorized/);
});

test('4004: the next connection gets a fresh token', async () => {
  const h = setup();
  const ws = await h.up();
  await h.advance(11000, 1000);
  ws.serverClose(4004, 'token expired');
  await h.advance(10);
  assert.equal(h.ws.token, 'tok2');
  assert.deepEqual(h.tokens, ['connect', 'expired']);
});

test('a getToken that never answers fails after connectTimeout and is asked again after the backoff', async () => {
  let calls = 0;
  const h = setup({
    connectTimeout: 3000,
    random: () => 0,
    getToken: () => (++calls === 1 ? new Promise(() => {}) : Promise.resolve('late-but-fine')),
  });
  h.client.connect();
  await h.advance(2900);
  assert.equal(h.sockets.length, 0);
  await h.advance(700);
  assert.match(h.named('error')[0].error.message, /did not answer within 3000 ms/);
  await h.advance(600);
  assert.equal(calls, 2);
  assert.equal(h.ws.token, 'late-but-fine');
});
