// Positions, de-duplication, RECOVERY, and make-before-break moves
// (RECOVERY_PROTOCOL.md as written into docs/PROTOCOL.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, settle } from './harness.js';

const pos = (key, seq, epoch = 'e1') => ({ key, epoch, seq });
const push = (ws, n, key = 'user', epoch = 'e1') => ws.push({ command: 'NEWS', data: n, pos: pos(key, n, epoch) });
const recovery = (ws, key, seq, extra = {}, code = 0) =>
  ws.push({ command: 'RECOVERY', code, data: { key, recovered: true, replayed: 0, epoch: 'e1', seq, ...extra } });

function collect(h) {
  const got = [];
  h.client.on('NEWS', (d) => got.push(d));
  return got;
}

test('a push is delivered once per key and position; positions() keeps the last one', async () => {
  const h = setup();
  const got = collect(h);
  const ws = await h.up({ recovery: { epoch: 'e1', seq: 10 } });
  assert.deepEqual(h.client.positions(), { user: { epoch: 'e1', seq: 10 }, all: { epoch: 'e1', seq: 10 } });
  push(ws, 9); // before the baseline: already accounted for
  push(ws, 11);
  push(ws, 11);
  push(ws, 12, 'all');
  push(ws, 12); // another key, same sequence
  push(ws, 3, 'group:room');
  ws.push({ command: 'NEWS', data: 'no pos' });
  ws.push({ command: 'NEWS', data: 'no pos' });
  assert.deepEqual(got, [11, 12, 12, 3, 'no pos', 'no pos']);
  assert.deepEqual(h.client.positions(), {
    user: { epoch: 'e1', seq: 12 },
    all: { epoch: 'e1', seq: 12 },
    'group:room': { epoch: 'e1', seq: 3 },
  });
  push(ws, 5, 'user', 'e2'); // a new epoch: the stream was recreated
  assert.deepEqual(got.at(-1), 5);
});

test('a reconnect resumes with since=<epoch>:<user>:<all>; RECOVERY reports recovered or reset', async () => {
  const h = setup({ random: () => 0 });
  const got = collect(h);
  const ws1 = await h.up({ recovery: { epoch: 'e1', seq: 10 } });
  push(ws1, 11);
  push(ws1, 12, 'all');
  ws1.serverClose(1006);
  await h.advance(1000);
  const ws2 = h.ws;
  assert.equal(ws2.url.searchParams.get('since'), 'e1:11:12');
  ws2.accept({ recovery: { epoch: 'e1', seq: 20 } });
  push(ws2, 11); // replayed though delivered: dropped
  push(ws2, 15);
  recovery(ws2, 'user', 15, { replayed: 2 });
  recovery(ws2, 'all', 30, { recovered: false, reason: 'too_old' }, 4100);
  assert.deepEqual(got, [11, 12, 15]);
  assert.equal(h.named('recovered')[0].key, 'user');
  const reset = h.named('reset');
  assert.equal(reset.length, 1);
  assert.equal(reset[0].key, 'all');
  assert.equal(reset[0].recovered, false);
  assert.equal(reset[0].reason, 'too_old');
  assert.deepEqual(h.client.positions().all, { epoch: 'e1', seq: 30 }, 'continues from the returned position');
});

test('since (positions saved across a reload) is used on the first connection; a bad one is refused', async () => {
  const h = setup({ since: { user: { epoch: 'k3j9x2', seq: 1234 }, all: { epoch: 'k3j9x2', seq: 1200 } } });
  h.client.connect();
  await settle();
  assert.equal(h.ws.url.searchParams.get('since'), 'k3j9x2:1234:1200');
  assert.throws(() => setup({ since: { user: { epoch: 'BAD!', seq: 1 } } }), TypeError);
  assert.throws(() => setup({ since: { user: { epoch: 'e1', seq: -1 } } }), TypeError);
});

test('a gateway without recovery and positions given (since): the first connection reports reset', async () => {
  const h = setup({ since: { user: { epoch: 'e1', seq: 5 }, all: { epoch: 'e1', seq: 5 } } });
  await h.up();
  assert.deepEqual(h.named('reset'), [{ key: '*', recovered: false, reason: 'unsupported' }]);
});

test('a gateway without recovery: a reconnect reports reset so the app reloads its state', async () => {
  const h = setup({ random: () => 0 });
  const ws1 = await h.up();
  assert.equal(h.named('reset').length, 0, 'the first connection missed nothing');
  ws1.serverClose(1006);
  await h.advance(1000);
  h.ws.accept();
  assert.deepEqual(h.named('reset'), [{ key: '*', recovered: false, reason: 'unsupported' }]);
});

test('make-before-break: RECONNECT opens a new connection, both deliver once, the old closes after RECOVERY and its replies', async () => {
  const h = setup();
  const got = collect(h);
  const old = await h.up({ recovery: { epoch: 'e1', seq: 100 } });
  push(old, 101);
  const inflight = h.client.request('ECHO', 'old');
  const inflightMsg = old.last('ECHO');
  old.push({ command: 'RECONNECT', data: { reason: 'draining' } });
  await settle();
  assert.equal(h.sockets.length, 2, 'a new connection while the old one still works');
  const neu = h.ws;
  assert.equal(neu.url.searchParams.get('since'), 'e1:101:100');
  assert.equal(h.client.state, 'connected', 'no flap to connecting during the move');
  const during = h.client.request('ECHO', 'during');
  assert.equal(old.sent.filter((m) => m.command === 'ECHO').length, 1, 'new requests wait for the new connection');
  push(old, 102); // the old one keeps receiving
  neu.accept({ recovery: { epoch: 'e1', seq: 104 } });
  assert.equal(neu.last('ECHO').data, 'during');
  push(neu, 102); // replayed: dropped
  push(neu, 103);
  push(old, 103); // both: once
  push(old, 104, 'all');
  recovery(neu, 'user', 103, { replayed: 2 });
  push(neu, 104, 'all');
  recovery(neu, 'all', 104, { replayed: 1 });
  assert.equal(old.closedWith, null, 'the old connection waits for the reply it owes');
  old.reply(inflightMsg, 'old');
  assert.equal(await inflight, 'old');
  assert.deepEqual(old.closedWith, { code: 1000 });
  neu.reply(neu.last('ECHO'), 'during');
  assert.equal(await during, 'during');
  assert.deepEqual(got, [101, 102, 103, 104]);
  old.serverClose(1012); // its late close changes nothing
  assert.equal(h.client.state, 'connected');
});

test('make-before-break: 4001 (replaced) on the old socket is not terminal', async () => {
  const h = setup();
  const old = await h.up();
  old.push({ command: 'RECONNECT', data: { reason: 'draining' } });
  await settle();
  const neu = h.ws;
  old.serverClose(4001, 'replaced');
  assert.equal(h.client.state, 'connecting', 'no connection is up for a moment');
  neu.accept();
  assert.equal(h.client.state, 'connected');
  assert.equal(h.named('disconnected').length, 0);
});

test('make-before-break without recovery: the old one closes as soon as the new one is welcomed', async () => {
  const h = setup();
  const old = await h.up();
  old.push({ command: 'RECONNECT', data: { reason: 'draining' } });
  await settle();
  h.ws.accept();
  assert.deepEqual(old.closedWith, { code: 1000 });
});

test('4001 on the current connection is terminal (no eviction loop between tabs)', async () => {
  const h = setup();
  const ws = await h.up();
  await h.advance(11000, 1000);
  ws.serverClose(4001, 'replaced');
  await h.advance(60000, 5000);
  assert.equal(h.sockets.length, 1);
  assert.equal(h.client.state, 'disconnected');
});
