// Token refresh before expiry, and the terminal closes: kick (4003) and
// revoke (4005), against the real gateway.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, waitFor } from './harness.js';

const stacks = [];
after(async () => Promise.all(stacks.map((s) => s.stop())));

test('short-lived tokens are refreshed (TOKEN_EXPIRING -> AUTH) and the connection never drops', async () => {
  // Tokens live 5 s; the gateway warns 3 s before expiry and allows no leeway,
  // so without a refresh the connection would close with 4004 within 6 s.
  const s = await startStack({ gatewayArgs: ['--auth.expiry_warning_s=3', '--auth.jwt.leeway_s=0'] });
  stacks.push(s);
  const reasons = [];
  const c = s.client('grace', {
    getToken: async ({ reason }) => {
      reasons.push(reason);
      return s.token('grace', 5);
    },
  });
  c.connect();
  const w = await c.ready(10000);
  assert.ok(w.tokenExpiresAt > 0);
  await waitFor(() => c.named('auth').length >= 3, 20000, 'three refreshes');
  assert.equal(c.named('connecting').length, 0, `the connection dropped: ${JSON.stringify(c.named('connecting'))}`);
  assert.equal(c.state, 'connected');
  assert.deepEqual(await c.request('ECHO', 'still here'), 'still here');
  assert.equal((await c.request('WHOAMI')).connId, w.connId, 'the same connection all along');
  assert.ok(reasons.filter((r) => r === 'expiring').length >= 3);
  assert.equal(c.named('error').length, 0, JSON.stringify(c.named('error')));
  c.disconnect();
});

test('without a fresh token the gateway closes with 4004 and the client reconnects with a new one', async () => {
  const s = await startStack({ gatewayArgs: ['--auth.expiry_warning_s=1', '--auth.jwt.leeway_s=0'] });
  stacks.push(s);
  const first = await s.token('heidi', 2);
  const reasons = [];
  const c = s.client('heidi', {
    getToken: async ({ reason }) => {
      reasons.push(reason);
      // The refresh gets the same, expiring token: the gateway keeps it and closes with 4004.
      return reason === 'connect' || reason === 'expiring' ? first : s.token('heidi');
    },
  });
  c.connect();
  await c.ready(10000);
  await waitFor(() => c.named('connecting').some((x) => x.code === 4004), 15000, 'close 4004');
  await waitFor(() => c.state === 'connected' && c.named('connected').length === 2, 15000, 'the reconnect');
  assert.ok(reasons.includes('expired'), `getToken reasons ${reasons}`);
  c.disconnect();
});

test('kick (4003) and revoke (4005) stop the client for good', async () => {
  const s = await startStack();
  stacks.push(s);
  const kicked = s.client('ivan').connect();
  const revoked = s.client('judy').connect();
  await Promise.all([kicked.ready(10000), revoked.ready(10000)]);
  await s.cli('ctl', 'kick', '--user', 'ivan', '--reason', 'bye');
  await s.cli('ctl', 'revoke', '--user', 'judy', '--reason', 'stolen laptop');
  await waitFor(() => kicked.state === 'disconnected' && revoked.state === 'disconnected', 10000, 'both closed');
  assert.deepEqual(kicked.named('disconnected'), [{ code: 4003, reason: 'bye' }]);
  assert.deepEqual(revoked.named('disconnected'), [{ code: 4005, reason: 'stolen laptop' }]);
  // Nothing happens afterwards: no reconnect attempt within a generous window.
  await sleep(1500);
  assert.equal(kicked.named('connecting').length, 0);
  assert.equal(revoked.named('connecting').length, 0);
  assert.equal((await kicked.request('ECHO', 1).catch((e) => e)).code, 'disconnected');
});
