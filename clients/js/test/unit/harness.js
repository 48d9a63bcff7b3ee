// Builds a Client wired to the fakes, and records every client event.
import { Client } from '../../src/client.js';
import { FakeClock, fakeSocketClass, settle } from './fakes.js';

export function setup(options = {}, url = 'ws://gw.test/ws') {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeSocketClass();
  const events = [];
  const tokens = [];
  let tokenN = 0;
  const client = new Client(url, {
    WebSocket: FakeWebSocket,
    clock,
    networkEvents: null,
    getToken: async (ctx) => {
      tokens.push(ctx.reason);
      return 'tok' + ++tokenN;
    },
    ...options,
  });
  for (const e of ['state', 'connecting', 'connected', 'disconnected', 'error', 'recovered', 'reset', 'auth']) {
    client.onEvent(e, (arg) => events.push([e, arg]));
  }
  const h = {
    client,
    clock,
    sockets,
    events,
    tokens,
    get ws() {
      return sockets.at(-1);
    },
    named: (name) => events.filter((e) => e[0] === name).map((e) => e[1]),
    // connect() and accept the first socket.
    async up(welcome) {
      client.connect();
      await settle();
      h.ws.accept(welcome);
      return h.ws;
    },
    // Advances the fake clock by ms, letting promises settle in between.
    async advance(ms, step = 50) {
      for (let left = ms; left > 0; left -= step) {
        clock.advance(Math.min(step, left));
        await settle(2);
      }
    },
  };
  return h;
}

export { settle };
