// Reconnect delays: full jitter between the floor and the doubling cap, and
// no hot loop against a server that accepts and closes at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoff } from '../../src/client.js';
import { setup, settle } from './harness.js';
import { sequence } from './fakes.js';

test('backoff stays within [min, min + min(max, min*2^n)] and never above max', () => {
  for (let n = 0; n < 40; n++) {
    const hi = Math.min(20000, 500 + Math.min(20000, 500 * 2 ** n));
    assert.equal(backoff(n, 500, 20000, () => 0), 500, `attempt ${n} lowest`);
    const top = backoff(n, 500, 20000, () => 0.999999);
    assert.ok(top <= hi && top >= hi - 1, `attempt ${n}: highest ${top}, want about ${hi}`);
  }
  assert.equal(backoff(0, 500, 20000, () => 0.5), 750);
  assert.equal(backoff(1000, 500, 20000, () => 0.999999), 20000);
});

test('backoff spreads clients over the whole window (full jitter)', () => {
  // 2000 clients at attempt 5 (window 500..16500 ms): the delays cover the
  // window evenly instead of bunching at one point (a synchronised storm).
  const samples = Array.from({ length: 2000 }, () => backoff(5, 500, 20000));
  const buckets = new Array(8).fill(0);
  for (const s of samples) {
    assert.ok(s >= 500 && s <= 16500, `delay ${s} outside the window`);
    buckets[Math.min(7, Math.floor(((s - 500) / 16000) * 8))]++;
  }
  // Each eighth of the window expects 250; a uniform draw keeps every bucket
  // far above 125 (the chance of one falling below is < 1e-15).
  for (const b of buckets) assert.ok(b > 125, `uneven spread: ${buckets}`);
  assert.ok(new Set(samples).size > 1000, 'delays are not distinct enough');
});

test('a server that accepts and closes at once gets growing delays, not a hot loop', async () => {
  const h = setup({ random: sequence(0.5) });
  h.client.connect();
  await settle();
  const delays = [];
  for (let i = 0; i < 8; i++) {
    h.ws.accept();
    h.ws.serverClose(i % 2 ? 1012 : 4000); // codes that reconnect quickly after a stable connection
    const c = h.named('connecting').at(-1);
    delays.push(c.delay);
    await h.advance(c.delay + 10);
  }
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] >= delays[i - 1], `delays ${delays}`);
  assert.ok(delays[0] >= 500, `first delay ${delays[0]} below the floor`);
  // min(20000, 500 + 0.5 * min(20000, 500 * 2^7)) with random 0.5
  assert.equal(delays.at(-1), 10500, `delays ${delays}`);
});

test('the attempt counter resets only after the connection stayed up for stableAfter', async () => {
  const h = setup({ random: () => 0.999999, stableAfter: 10000 });
  h.client.connect();
  await settle();
  for (let i = 0; i < 4; i++) {
    h.ws.serverClose(1006); // handshake failures
    await h.advance(h.named('connecting').at(-1).delay + 10);
  }
  assert.equal(h.named('connecting').at(-1).attempt, 4);
  h.ws.accept();
  await h.advance(5000);
  h.ws.serverClose(1006);
  assert.equal(h.named('connecting').at(-1).attempt, 5, 'up for 5 s: not stable, the counter goes on');
  await h.advance(h.named('connecting').at(-1).delay + 10);
  h.ws.accept();
  await h.advance(10000);
  h.ws.serverClose(1006);
  const c = h.named('connecting').at(-1);
  assert.equal(c.attempt, 1, 'stable: the counter restarted');
  assert.ok(c.delay <= 1000, `first delay after a stable connection ${c.delay}`);
});
