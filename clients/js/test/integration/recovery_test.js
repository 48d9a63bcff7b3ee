// Recovery against the real gateway (docs/PROTOCOL.md §7.6 and the gateway's
// recovery): nothing lost, nothing delivered twice across a drain, a dropped
// connection and a page reload. Every test here is skipped, with the reason,
// while the gateway's WELCOME carries no `recovery` field: the gateway side
// of recovery is built separately. When it lands, these run as they are
// (add the gateway's recovery settings to RECOVERY_ARGS if it needs any).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, waitFor } from './harness.js';

const RECOVERY_ARGS = [];

let s;
let supported = false;
before(async () => {
  s = await startStack({ gateways: ['gw-a', 'gw-b'], gatewayArgs: RECOVERY_ARGS, jetstream: true });
  const probe = s.client('probe', {}, s.gateways[0].url).connect();
  supported = !!(await probe.ready(10000)).recovery;
  probe.disconnect();
});
after(async () => s && s.stop());

function skipUnlessRecovery(t) {
  if (!supported) t.skip('the gateway has no recovery yet: its WELCOME carries no recovery field');
  return !supported;
}

// Records the n of every NEWS push, and complains about any delivered twice.
function track(c) {
  const seen = [];
  c.on('NEWS', (d) => seen.push(d.n));
  return seen;
}
const exactlyOnce = (seen, total) => {
  const dup = seen.filter((n, i) => seen.indexOf(n) !== i);
  assert.deepEqual(dup, [], 'delivered twice');
  const missing = Array.from({ length: total }, (_, i) => i).filter((n) => !seen.includes(n));
  assert.deepEqual(missing, [], 'lost');
  assert.deepEqual(seen, [...seen].sort((x, y) => x - y), 'in order');
};

test('drain under push load: nothing lost, nothing twice (make-before-break)', async (t) => {
  if (skipUnlessRecovery(t)) return;
  const [a, b] = s.gateways;
  let draining = false;
  const c = s.client('rec-drain', {}, () => (draining ? b.url : a.url)).connect();
  await c.ready(10000);
  const seen = track(c);
  const pub = await s.publisher();
  let n = 0;
  let stop = false;
  const publishing = (async () => {
    for (; !stop && n < 100000; n++) {
      pub.pub('wsgw.user.rec-drain', { command: 'NEWS', data: { n } });
      if (n % 20 === 19) await Promise.all([pub.flush(), sleep(10)]);
    }
    await pub.flush();
  })();
  await waitFor(() => seen.length > 200, 20000, 'pushes before the drain');
  draining = true;
  a.proc.kill('SIGTERM');
  await waitFor(() => c.welcome.gateway === 'gw-b' && !a.alive(), 30000, 'the move to gw-b');
  const at = seen.length;
  await waitFor(() => seen.length > at + 200, 20000, 'pushes after the move');
  stop = true;
  await publishing;
  await waitFor(() => seen.length >= n, 20000, `all ${n} pushes`);
  await sleep(300); // a duplicate would arrive now
  exactlyOnce(seen, n);
  assert.deepEqual(c.named('reset'), []);
});

test('a dropped connection resumes with since=: the pushes of the gap arrive once, RECOVERY says recovered', async (t) => {
  if (skipUnlessRecovery(t)) return;
  const net = new EventTarget();
  const c = s.client('rec-gap', { networkEvents: net, minReconnectDelay: 2000, maxReconnectDelay: 2000 }, s.gateways.at(-1).url).connect();
  await c.ready(10000);
  const seen = track(c);
  const recovered = [];
  c.onEvent('recovered', (r) => recovered.push(r.key));
  for (let n = 0; n < 5; n++) await s.push('rec-gap', 'NEWS', { n });
  await waitFor(() => seen.length === 5, 10000, 'the first pushes');
  net.dispatchEvent(new Event('offline')); // the client drops its socket; it returns after 2 s
  for (let n = 5; n < 10; n++) await s.push('rec-gap', 'NEWS', { n });
  await waitFor(() => c.state === 'connected' && seen.length === 10, 15000, 'the gap replayed');
  assert.ok(recovered.includes('user'), `recovered ${recovered}`);
  exactlyOnce(seen, 10);
});

test('positions kept across a page reload (since) bring exactly the missed pushes', async (t) => {
  if (skipUnlessRecovery(t)) return;
  const url = s.gateways.at(-1).url;
  const first = s.client('rec-reload', {}, url).connect();
  await first.ready(10000);
  const before = track(first);
  for (let n = 0; n < 3; n++) await s.push('rec-reload', 'NEWS', { n });
  await waitFor(() => before.length === 3, 10000, 'the first pushes');
  const saved = JSON.stringify(first.positions());
  first.disconnect();
  for (let n = 3; n < 6; n++) await s.push('rec-reload', 'NEWS', { n });
  const second = s.client('rec-reload', { since: JSON.parse(saved) }, url);
  const after = track(second);
  second.connect();
  await waitFor(() => after.length === 3, 10000, 'the missed pushes');
  await sleep(300);
  assert.deepEqual(after, [3, 4, 5]);
});
