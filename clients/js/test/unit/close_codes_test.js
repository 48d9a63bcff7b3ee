// Every close code's decision (docs/PROTOCOL.md, Client procedures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_POLICY, closeAction } from '../../src/client.js';
import { setup, settle } from './harness.js';

// Connects, keeps the connection up past stableAfter, closes it with `code`.
async function closeWith(code, options) {
  const h = setup({ random: () => 0.5, restartSpread: 2000, ...options });
  await h.up();
  await h.advance(11000, 1000);
  h.ws.serverClose(code, 'because');
  await settle();
  return h;
}

const expected = {
  stop: async (h, code) => {
    assert.equal(h.client.state, 'disconnected');
    assert.deepEqual(h.named('disconnected'), [{ code, reason: 'because' }]);
    await h.advance(60000, 5000);
    assert.equal(h.sockets.length, 1, 'a terminal close never reconnects');
  },
  backoff: async (h) => {
    const c = h.named('connecting').at(-1);
    assert.ok(c.delay >= 500 && c.delay <= 1000, `backoff delay ${c.delay}`);
    await h.advance(c.delay - 50);
    assert.equal(h.sockets.length, 1, 'waited for the backoff');
    await h.advance(100);
    assert.equal(h.sockets.length, 2);
    assert.equal(h.tokens.at(-1), 'reconnect');
  },
  reconnect: async (h) => {
    assert.equal(h.named('connecting').at(-1).delay, 0);
    await h.advance(10);
    assert.equal(h.sockets.length, 2);
  },
  restart: async (h) => {
    assert.equal(h.named('connecting').at(-1).delay, 1000, 'random 0.5 of a 2000 ms spread');
    await h.advance(1010);
    assert.equal(h.sockets.length, 2);
  },
  token: async (h) => {
    assert.equal(h.named('connecting').at(-1).delay, 0);
    await h.advance(10);
    assert.equal(h.sockets.length, 2);
    assert.equal(h.tokens.at(-1), 'expired', 'getToken asked for a fresh token');
    assert.equal(h.ws.token, 'tok2');
  },
  'token-once': async (h, code) => {
    await h.advance(10);
    assert.equal(h.sockets.length, 2);
    assert.equal(h.tokens.at(-1), 'invalid');
    h.ws.accept();
    h.ws.serverClose(code, 'again');
    await settle();
    assert.equal(h.client.state, 'disconnected', 'a second one before the connection is stable is terminal');
    assert.deepEqual(h.named('disconnected'), [{ code, reason: 'again' }]);
  },
};

for (const [code, action] of Object.entries(CLOSE_POLICY)) {
  test(`close ${code} -> ${action}`, async () => {
    const h = await closeWith(Number(code));
    await expected[action](h, Number(code));
  });
}

test('codes the table does not name back off (so future codes have a default)', async () => {
  for (const code of [1004, 1013, 1014, 1015, 3000, 4008, 4099, 4999]) {
    assert.equal(closeAction(code), 'backoff');
    const h = await closeWith(code);
    await expected.backoff(h);
  }
});

test('1012 and 4000 on a connection that never became stable back off instead', async () => {
  for (const code of [1012, 4000, 4004]) {
    const h = setup({ random: () => 0.5 });
    await h.up();
    h.ws.serverClose(code);
    await settle();
    assert.ok(h.named('connecting').at(-1).delay >= 500, `code ${code}: ${h.named('connecting').at(-1).delay}`);
  }
});

test('4006 then getToken returning the refused token again is terminal', async () => {
  const h = setup({ getToken: async () => 'same-token' });
  await h.up();
  await h.advance(11000, 1000);
  h.ws.serverClose(4006, 'revalidation said no');
  await h.advance(10);
  assert.equal(h.sockets.length, 1, 'no second connection with the refused token');
  assert.equal(h.client.state, 'disconnected');
  assert.equal(h.named('disconnected')[0].code, 4006);
});

test('4006 once, then a stable connection, then 4006 again asks getToken again', async () => {
  const h = await closeWith(4006);
  await h.advance(10);
  h.ws.accept();
  await h.advance(11000, 1000);
  h.ws.serverClose(4006);
  await h.advance(10);
  assert.equal(h.client.state, 'connecting');
  assert.equal(h.sockets.length, 3);
});

test('a close while the handshake fails (1006 before WELCOME) backs off and asks getToken before each attempt', async () => {
  const h = setup({ random: () => 0 });
  h.client.connect();
  await settle();
  for (let i = 0; i < 3; i++) {
    h.ws.serverClose(1006); // e.g. HTTP 401 at the handshake: a browser sees only 1006
    await h.advance(h.named('connecting').at(-1).delay + 10);
  }
  assert.deepEqual(h.tokens, ['connect', 'reconnect', 'reconnect', 'reconnect']);
  assert.deepEqual(h.sockets.map((s) => s.token), ['tok1', 'tok2', 'tok3', 'tok4']);
});

test('no WELCOME within connectTimeout: the attempt is dropped and retried', async () => {
  const h = setup({ connectTimeout: 3000, random: () => 0 });
  h.client.connect();
  await settle();
  await h.advance(3100);
  assert.ok(h.sockets[0].closedWith, 'the silent socket was closed');
  assert.equal(h.named('connecting').at(-1).code, 1006);
  await h.advance(600);
  assert.equal(h.sockets.length, 2);
});

test('disconnect() stops for good: no reconnect, the socket is closed with 1000', async () => {
  const h = setup();
  const ws = await h.up();
  h.client.disconnect();
  assert.deepEqual(ws.closedWith, { code: 1000 });
  assert.equal(h.client.state, 'disconnected');
  assert.equal(h.named('disconnected')[0].code, 1000);
  await h.advance(60000, 5000);
  assert.equal(h.sockets.length, 1);
  // connect() starts again.
  h.client.connect();
  await settle();
  assert.equal(h.sockets.length, 2);
});

test('online reconnects at once during a backoff wait; offline closes an open socket', async () => {
  const net = new EventTarget();
  const h = setup({ networkEvents: net, random: () => 0.999 });
  const ws = await h.up();
  net.dispatchEvent(new Event('offline'));
  assert.ok(ws.closedWith, 'offline closed the socket the browser still thought open');
  assert.equal(h.client.state, 'connecting');
  assert.ok(h.named('connecting').at(-1).delay >= 500);
  net.dispatchEvent(new Event('online'));
  await settle();
  assert.equal(h.sockets.length, 2, 'online: no waiting for the backoff');
  h.client.disconnect();
  net.dispatchEvent(new Event('online'));
  await settle();
  assert.equal(h.sockets.length, 2, 'listeners removed after disconnect()');
});
