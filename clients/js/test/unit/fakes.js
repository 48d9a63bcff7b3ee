// A scripted fake gateway for the unit tests: a fake WebSocket class whose
// instances the test drives as the server would, and a fake clock that the
// client takes through its `clock` option.

export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.t = start;
    this.timers = new Map(); // id -> {due, fn}
    this.next = 1;
  }
  now = () => this.t;
  setTimeout = (fn, ms) => {
    const id = this.next++;
    this.timers.set(id, { due: this.t + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (id) => {
    this.timers.delete(id);
  };
  // Moves time forward by ms, running every timer that falls due, in order.
  advance(ms) {
    const end = this.t + ms;
    for (let guard = 0; guard < 100000; guard++) {
      let first = null;
      for (const [id, t] of this.timers) if (t.due <= end && (!first || t.due < first[1].due)) first = [id, t];
      if (!first) break;
      this.timers.delete(first[0]);
      this.t = Math.max(this.t, first[1].due);
      first[1].fn();
    }
    this.t = end;
  }
  // A machine that sleeps: the wall clock jumps, timers (monotonic) do not
  // move, so every pending timer now falls due ms later in wall-clock terms.
  sleep(ms) {
    this.t += ms;
    for (const t of this.timers.values()) t.due += ms;
  }
}

// Lets promise continuations (the client's awaits) run.
export const settle = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

// Makes a fake WebSocket class; every instance is kept in `sockets`.
export function fakeSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 3;
    constructor(url, protocols) {
      for (const p of protocols || []) {
        // What a browser does with a subprotocol that is not an HTTP token.
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p)) throw new SyntaxError('bad subprotocol ' + p);
      }
      this.url = new URL(url);
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null; // {code} when the client closed it
      sockets.push(this);
    }
    send(text) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: send while ' + this.readyState);
      this.sent.push(JSON.parse(text));
    }
    close(code) {
      this.closedWith = { code };
      this.readyState = 3;
    }
    // ---- the server side
    get token() {
      const p = (this.protocols || []).find((x) => x.startsWith('bearer.'));
      return p ? p.slice(7) : this.url.searchParams.get('token');
    }
    accept(welcome = {}) {
      this.readyState = 1;
      this.onopen?.({});
      this.push({
        command: 'WELCOME',
        traceId: '',
        data: { connId: 'gw.' + sockets.indexOf(this), userId: 'alice', heartbeatIntervalMs: 25000, idleTimeoutMs: 60000, ...welcome },
      });
    }
    push(msg) {
      this.onmessage?.({ data: JSON.stringify({ traceId: '', code: 0, message: 'success', ...msg }) });
    }
    reply(req, data, code = 0, message = 'success') {
      this.push({ command: req.command, traceId: req.traceId, data, code, message });
    }
    serverClose(code, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    last(command) {
      return this.sent.filter((m) => m.command === command).at(-1);
    }
  }
  return { FakeWebSocket, sockets };
}

// A random source that returns the given values in turn (then repeats the last).
export const sequence = (...values) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
};
