// A gateway drains (SIGTERM) under request load: RECONNECT moves every client
// to the other gateway (make-before-break) and no request is lost.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, waitFor } from './harness.js';

let s;
after(async () => s && s.stop());

test('drain under load: every request is answered, every client ends up on the other gateway', async () => {
  s = await startStack({ gateways: ['gw-a', 'gw-b'] });
  const [a, b] = s.gateways;
  // The load balancer: gw-a until it drains, then gw-b.
  let draining = false;
  const url = () => (draining ? b.url : a.url);
  const clients = Array.from({ length: 16 }, (_, i) => s.client('load' + i, { timeout: 15000 }, url).connect());
  await Promise.all(clients.map((c) => c.ready(10000)));
  assert.ok(clients.every((c) => c.welcome.gateway === 'gw-a'));

  const stats = { ok: 0, resent: 0, failed: [] };
  let stop = false;
  // One request until it is answered. A 502 "draining" answer says the
  // gateway did not run it, so the application sends it again (the client
  // itself never does); anything else that is not the echo is a loss.
  async function one(c, payload) {
    for (let tries = 0; tries < 5; tries++) {
      try {
        const r = await c.request('ECHO', payload);
        if (JSON.stringify(r) !== JSON.stringify(payload)) stats.failed.push(['wrong echo', payload, r]);
        else stats.ok++;
        return;
      } catch (e) {
        if (e.code === 502 && /draining/.test(e.message)) {
          stats.resent++;
          continue;
        }
        stats.failed.push([e.code, e.message, payload]);
        return;
      }
    }
    stats.failed.push(['502 five times', payload]);
  }
  // One request at a time per client, at most one per 70 ms: under ECHO's
  // rate limit (20/s per connection, scripts/commands/echo.lua).
  async function worker(c) {
    for (let n = 0; !stop && n < 100000; n++) {
      await Promise.all([one(c, { c: c.id, n }), sleep(70)]);
    }
  }
  clients.forEach((c, i) => (c.id = i));
  const workers = clients.map((c) => worker(c));

  await waitFor(() => stats.ok > 300, 20000, 'the load to run');
  draining = true;
  a.proc.kill('SIGTERM');
  await waitFor(() => !a.alive(), 30000, 'gw-a to finish draining');
  assert.equal(a.exitCode, 0, 'gw-a drained and exited 0');
  await waitFor(() => clients.every((c) => c.state === 'connected' && c.welcome.gateway === 'gw-b'), 20000, 'every client on gw-b');
  const atMove = stats.ok;
  await waitFor(() => stats.ok > atMove + 300, 20000, 'the load to go on on gw-b');
  stop = true;
  await Promise.all(workers);
  console.log(`drain: ${stats.ok} requests answered, ${stats.resent} answered 502 draining and sent again by the app, ${stats.failed.length} lost`);
  assert.deepEqual(stats.failed.slice(0, 5), [], `no request lost (${stats.failed.length} were)`);
  for (const c of clients) {
    assert.equal(c.named('disconnected').length, 0);
    // Moved by RECONNECT (make-before-break), not by a reconnect after a close.
    assert.deepEqual(c.named('connecting'), []);
    assert.deepEqual(c.named('error'), []);
  }
});
