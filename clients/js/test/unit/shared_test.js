// The shared-connection mode with Node's BroadcastChannel and a fake Web
// Locks manager: one socket for all "tabs", relayed pushes, states and
// requests, and a takeover that resumes from the tabs' positions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SharedClient } from '../../src/shared.js';
import { FakeClock, fakeSocketClass, settle } from './fakes.js';

// navigator.locks as browsers do it: one holder per name, the others queue;
// the lock is free when the holder's callback promise settles.
class FakeLocks {
  queues = new Map();
  request(name, cb) {
    const q = this.queues.get(name) || [];
    this.queues.set(name, q);
    q.push(cb);
    if (q.length === 1) this._run(name);
    return Promise.resolve();
  }
  async _run(name) {
    const q = this.queues.get(name);
    await q[0]();
    q.shift();
    if (q.length) this._run(name);
  }
}

let saved;
before(() => {
  saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value: { locks: new FakeLocks() }, configurable: true });
});
after(() => {
  if (saved) Object.defineProperty(globalThis, 'navigator', saved);
  else delete globalThis.navigator;
});

const wait = async (pred, what) => {
  for (let i = 0; i < 200; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('timed out waiting for ' + what);
};

function tabs(n, channel) {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeSocketClass();
  const list = Array.from({ length: n }, () => {
    const c = new SharedClient('ws://gw.test/ws', { channel, WebSocket: FakeWebSocket, clock, networkEvents: null, getToken: async () => 'tok' });
    c.got = [];
    c.on('NEWS', (d) => c.got.push(d));
    return c;
  });
  return { list, sockets, clock };
}

test('one leader holds the only socket; pushes reach every tab once; states follow the leader', async () => {
  const { list, sockets } = tabs(3, 't1');
  for (const c of list) c.connect();
  await wait(() => sockets.length === 1, 'the socket');
  await settle();
  assert.equal(list.filter((c) => c.leader).length, 1);
  sockets[0].accept({ recovery: { epoch: 'e1', seq: 1 } });
  await wait(() => list.every((c) => c.state === 'connected'), 'connected everywhere');
  sockets[0].push({ command: 'NEWS', data: 1, pos: { key: 'user', epoch: 'e1', seq: 2 } });
  sockets[0].push({ command: 'NEWS', data: 1, pos: { key: 'user', epoch: 'e1', seq: 2 } });
  await wait(() => list.every((c) => c.got.length === 1), 'the push everywhere');
  await settle();
  for (const c of list) assert.deepEqual(c.got, [1]);
  assert.equal(sockets.length, 1);
  for (const c of list) c.disconnect();
});

test('a follower request goes over the leader socket and its reply comes back', async () => {
  const { list, sockets } = tabs(2, 't2');
  for (const c of list) c.connect();
  await wait(() => sockets.length === 1, 'the socket');
  sockets[0].accept();
  await wait(() => list.every((c) => c.state === 'connected'), 'connected');
  const follower = list.find((c) => !c.leader);
  const p = follower.request('ECHO', { x: 1 }, { timeout: 5000 });
  await wait(() => sockets[0].last('ECHO'), 'the request on the socket');
  sockets[0].reply(sockets[0].last('ECHO'), { x: 1 });
  assert.deepEqual(await p, { x: 1 });
  const e = follower.request('NOPE', null, { timeout: 5000 });
  await wait(() => sockets[0].last('NOPE'), 'the second request');
  sockets[0].reply(sockets[0].last('NOPE'), null, 404, 'unknown command');
  const err = await e.catch((x) => x);
  assert.equal(err.code, 404);
  assert.equal(err.message, 'unknown command');
  for (const c of list) c.disconnect();
});

test('the leader leaves: the next tab leads, resumes from its positions, a replayed push counts once', async () => {
  const { list, sockets } = tabs(3, 't3');
  for (const c of list) c.connect();
  await wait(() => sockets.length === 1, 'the socket');
  sockets[0].accept({ recovery: { epoch: 'e1', seq: 10 } });
  await wait(() => list.every((c) => c.state === 'connected'), 'connected');
  for (let s = 11; s <= 12; s++) sockets[0].push({ command: 'NEWS', data: s, pos: { key: 'user', epoch: 'e1', seq: s } });
  sockets[0].push({ command: 'NEWS', data: 'all', pos: { key: 'all', epoch: 'e1', seq: 13 } });
  await wait(() => list.every((c) => c.got.length === 3), 'the pushes');
  const old = list.find((c) => c.leader);
  const rest = list.filter((c) => c !== old);
  const follower = rest[0];
  const inflight = follower.request('ECHO', 'x', { timeout: 5000 }).catch((e) => e);
  await wait(() => sockets[0].last('ECHO'), 'the request on the old leader');
  old.disconnect(); // the leader tab goes away (its lock is freed)
  await wait(() => sockets.length === 2, 'the new leader socket');
  assert.equal(rest.filter((c) => c.leader).length, 1);
  assert.equal(sockets[1].url.searchParams.get('since'), 'e1:12:13', 'resumed from the positions the tabs delivered');
  const err = await inflight;
  assert.equal(err.code, 'closed', 'a request in flight on the old leader fails, retryable');
  assert.equal(err.retryable, true);
  sockets[1].accept({ recovery: { epoch: 'e1', seq: 20 } });
  sockets[1].push({ command: 'NEWS', data: 12, pos: { key: 'user', epoch: 'e1', seq: 12 } }); // replayed
  sockets[1].push({ command: 'NEWS', data: 14, pos: { key: 'user', epoch: 'e1', seq: 14 } });
  await wait(() => rest.every((c) => c.got.length === 4), 'the new push');
  await settle();
  for (const c of rest) assert.deepEqual(c.got, [11, 12, 'all', 14]);
  for (const c of rest) c.disconnect();
});
