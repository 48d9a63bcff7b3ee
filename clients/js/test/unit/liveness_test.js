// The watchdog: any frame proves the connection alive; silence past the
// gateway's heartbeat interval plus a margin sends HEALTH; silence after that
// reconnects. Deadlines are wall-clock deadlines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, settle } from './harness.js';

const health = (ws) => ws.sent.filter((m) => m.command === 'HEALTH');

test('silence past heartbeatIntervalMs + livenessMargin sends HEALTH; its reply keeps the connection', async () => {
  const h = setup({ livenessMargin: 5000 });
  const ws = await h.up({ heartbeatIntervalMs: 20000 });
  await h.advance(24000, 1000);
  assert.equal(health(ws).length, 0, 'not before 25 s of silence');
  await h.advance(1500, 500);
  assert.equal(health(ws).length, 1);
  const pushes = [];
  h.client.on('*', (d, m) => pushes.push(m.command));
  ws.reply(health(ws)[0], { ts: 1 });
  assert.deepEqual(pushes, [], 'the HEALTH reply is not a push');
  await h.advance(20000, 1000);
  assert.equal(h.client.state, 'connected');
  assert.equal(health(ws).length, 1, 'the reply reset the silence');
});

test('any frame resets the watchdog', async () => {
  const h = setup({ livenessMargin: 5000 });
  const ws = await h.up({ heartbeatIntervalMs: 20000 });
  for (let i = 0; i < 10; i++) {
    await h.advance(10000, 1000);
    ws.push({ command: 'TICK', data: i });
  }
  assert.equal(health(ws).length, 0);
});

test('HEALTH unanswered for livenessMargin: the connection is dropped and a new one opened', async () => {
  const h = setup({ livenessMargin: 5000, random: () => 0 });
  const ws = await h.up({ heartbeatIntervalMs: 20000 });
  const p = h.client.request('ECHO', 1, { timeout: 60000 }).catch((e) => e);
  await h.advance(26000, 1000);
  assert.equal(health(ws).length, 1);
  await h.advance(5000, 500);
  assert.ok(ws.closedWith, 'the silent socket was closed');
  assert.equal((await p).code, 'closed');
  assert.equal(h.named('connecting').at(-1).code, 1006);
  assert.match(h.named('connecting').at(-1).reason, /HEALTH unanswered/);
  await h.advance(1000);
  assert.equal(h.sockets.length, 2);
});

test('a machine that slept notices at once: deadlines are read from the wall clock', async () => {
  const h = setup({ livenessMargin: 5000 });
  const ws = await h.up({ heartbeatIntervalMs: 20000 });
  const p = h.client.request('ECHO', 1, { timeout: 30000 }).catch((e) => e);
  await h.advance(2000, 500);
  h.clock.sleep(2 * 3600 * 1000); // the lid is closed for two hours
  await h.advance(1000, 100); // the first timer that fires after waking
  assert.equal(health(ws).length, 1, 'a probe right after waking');
  assert.equal((await p).code, 'timeout', 'the request deadline passed during the sleep');
});

test('a backoff wait that spans a sleep ends when the machine wakes', async () => {
  const h = setup({ random: () => 0.999 });
  h.client.connect();
  await settle();
  for (let i = 0; i < 6; i++) {
    h.ws.serverClose(1006);
    await h.advance(h.named('connecting').at(-1).delay + 10, 200);
  }
  h.ws.serverClose(1006);
  const n = h.sockets.length;
  assert.ok(h.named('connecting').at(-1).delay > 15000);
  h.clock.sleep(60000);
  await h.advance(1000, 100);
  assert.equal(h.sockets.length, n + 1);
});
