// A gateway drains (SIGTERM) under request load: RECONNECT moves every client
// to the other gateway (make-before-break) and no request is lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, waitFor } from './harness.js';

let s;
let clients;
const stats = { ok: 0, draining502: 0, closed: 0, failed: [] };

// The scenario runs once; the tests below read its outcome.
before(async () => {
  s = await startStack({ gateways: ['gw-a', 'gw-b'] });
  const [a, b] = s.gateways;
  // The load balancer: gw-a until it drains, then gw-b.
  let draining = false;
  const url = () => (draining ? b.url : a.url);
  clients = Array.from({ length: 16 }, (_, i) => s.client('load' + i, { timeout: 15000 }, url).connect());
  await Promise.all(clients.map((c) => c.ready(10000)));
  assert.ok(clients.every((c) => c.welcome.gateway === 'gw-a'));

  let stop = false;
  // One ECHO until it is answered. The client never sends a request twice;
  // ECHO is idempotent, so this application does when the error says the
  // request did not run (502 "draining") or may not have (closed).
  async function one(c, payload) {
    for (let tries = 0; tries < 5; tries++) {
      try {
        const r = await c.request('ECHO', payload);
        if (JSON.stringify(r) !== JSON.stringify(payload)) stats.failed.push(['wrong echo', payload, r]);
        else stats.ok++;
        return;
      } catch (e) {
        if (e.code === 502 && /draining/.test(e.message)) stats.draining502++;
        else if (e.code === 'closed' && e.retryable && e.sent) stats.closed++;
        else return stats.failed.push([e.code, e.message, payload]);
      }
    }
    stats.failed.push(['five failures', payload]);
  }
  // One request at a time per client, at most one per 70 ms: under ECHO's
  // rate limit (20/s per connection, scripts/commands/echo.lua).
  async function worker(c, id) {
    for (let n = 0; !stop && n < 100000; n++) await Promise.all([one(c, { c: id, n }), sleep(70)]);
  }
  const workers = clients.map((c, i) => worker(c, i));
  await waitFor(() => stats.ok > 300, 20000, 'the load to run');
  draining = true;
  a.proc.kill('SIGTERM');
  await waitFor(() => !a.alive(), 30000, 'gw-a to finish draining');
  stats.exitCode = a.exitCode;
  await waitFor(() => clients.every((c) => c.state === 'connected' && c.welcome.gateway === 'gw-b'), 20000, 'every client on gw-b');
  const atMove = stats.ok;
  await waitFor(() => stats.ok > atMove + 300, 20000, 'the load to go on on gw-b');
  stop = true;
  await Promise.all(workers);
  console.log(
    `drain: ${stats.ok} requests answered; the app sent again ${stats.draining502} answered 502 draining ` +
      `and ${stats.closed} failed as closed; ${stats.failed.length} lost`
  );
});
after(async () => s && s.stop());

test('drain under load: no request lost, every client moved to the other gateway by RECONNECT', () => {
  assert.equal(stats.exitCode, 0, 'gw-a drained and exited 0');
  assert.deepEqual(stats.failed.slice(0, 5), [], `no request lost (${stats.failed.length} were)`);
  for (const c of clients) {
    assert.equal(c.named('disconnected').length, 0);
    // Moved by RECONNECT (make-before-break), not by a reconnect after a close.
    assert.deepEqual(c.named('connecting'), []);
    assert.deepEqual(c.named('error'), []);
  }
});

// The gateway closes a connection with 1012 as soon as it has no request in
// flight after sending RECONNECT, so a request the client sent before it read
// RECONNECT is dropped unanswered (the client fails it as `closed`).
// RECOVERY_PROTOCOL.md: the old connection stays until the client closes it.
test(
  'drain under load: no request even needs sending again',
  { todo: 'the gateway must keep a drained connection until the client has moved (issue 14)' },
  () => {
    assert.equal(stats.closed, 0, `${stats.closed} requests in flight were dropped by the drain`);
    assert.equal(stats.draining502, 0, `${stats.draining502} requests were answered 502 draining`);
  }
);
