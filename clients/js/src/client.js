// The official wsgw client: one WebSocket to the gateway, with reconnects,
// tokens, requests, pushes and positions done as docs/PROTOCOL.md ("Client
// procedures") says. No dependencies; runs in browsers, workers and Node >= 20
// (pass a WebSocket constructor, e.g. from the `ws` package, where there is no
// global one).

// What the client does when the gateway (or the network) closes its socket.
// docs/PROTOCOL.md holds the same table; a test keeps the two equal.
//   stop       terminal: the client stays disconnected until connect()
//   backoff    reconnect after the backoff delay
//   reconnect  reconnect at once (after the backoff delay if the connection
//              was not up for stableAfter)
//   restart    the same, after a random delay in [0, restartSpread]
//   token      as reconnect; getToken is asked for a fresh token first
//   token-once as token, but a second one before the connection is stable,
//              or getToken returning the refused token again, is terminal
export const CLOSE_POLICY = {
  1000: 'stop',
  1001: 'backoff',
  1002: 'backoff',
  1003: 'backoff',
  1005: 'backoff',
  1006: 'backoff',
  1007: 'backoff',
  1008: 'backoff',
  1009: 'backoff',
  1011: 'backoff',
  1012: 'restart',
  4000: 'reconnect',
  4001: 'stop',
  4002: 'backoff',
  4003: 'stop',
  4004: 'token',
  4005: 'stop',
  4006: 'token-once',
  4007: 'backoff',
};

// Codes the table does not name (future ones included) back off.
export const closeAction = (code) => CLOSE_POLICY[code] || 'backoff';

// Full jitter with a floor: uniform in [min, min + min(max, min * 2^attempt)],
// capped at max.
export const backoff = (attempt, min, max, random = Math.random) =>
  Math.min(max, min + Math.floor(random() * Math.min(max, min * 2 ** Math.min(attempt, 31))));

// A reply with a non-zero code (`code` is the number), or a failure of the
// client itself (`code` is 'timeout', 'closed', 'disconnected', 'queue_full'
// or 'aborted'). `sent` says whether the request left the client.
export class WsgwError extends Error {
  constructor(code, message, extra) {
    super(message);
    this.name = 'WsgwError';
    this.code = code;
    Object.assign(this, extra);
  }
}

// Thrown by getToken (or by the client when getToken returns null): the user
// has no session any more, so the client stops instead of retrying.
export class UnauthorizedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

const unauthorized = (e) => e && e.name == 'UnauthorizedError';
// Characters a subprotocol can carry and every JWT/base64url token uses;
// anything else (+ / = ...) makes a browser throw, so it goes in the query.
const SUBPROTOCOL_SAFE = /^[\w.~-]+$/;
const EPOCH = /^[0-9a-z]{1,32}$/;
// The wall clock is read at least this often while any timer is armed, so a
// machine that slept notices at once that deadlines passed.
const TICK_MS = 1000;
const LATE_KEEP = 256;

const okPos = (p) => p && typeof p.key == 'string' && EPOCH.test(p.epoch) && Number.isSafeInteger(p.seq) && p.seq >= 0;

const checkPositions = (since) => {
  const out = {};
  for (const k in since || {}) {
    const p = since[k];
    if (!okPos({ key: k, ...p })) {
      throw new TypeError(`since.${k}: want {epoch, seq}, got ${JSON.stringify(p)}`);
    }
    out[k] = { epoch: p.epoch, seq: p.seq };
  }
  return out;
};

export class Client {
  constructor(url, options = {}) {
    this.url = url;
    const o = (this.o = {
      subprotocol: 'wsgw',
      tokenVia: 'subprotocol',
      minReconnectDelay: 500,
      maxReconnectDelay: 20000,
      stableAfter: 10000,
      timeout: 10000,
      connectTimeout: 10000,
      queueLimit: 100,
      livenessMargin: 10000,
      restartSpread: 2000,
      random: Math.random,
      ...options,
    });
    this.WS = o.WebSocket || globalThis.WebSocket;
    if (!this.WS) throw new TypeError('no WebSocket: pass options.WebSocket (e.g. from the ws package)');
    const c = o.clock || {};
    this._now = c.now || (() => Date.now());
    this._set = c.setTimeout || ((f, ms) => setTimeout(f, ms));
    this._unset = c.clearTimeout || ((t) => clearTimeout(t));
    this.state = 'disconnected';
    this.welcome = null;
    this._h = new Map(); // '@event' or command -> Set of handlers
    this._req = new Map(); // traceId -> request waiting for its reply
    this._q = []; // traceIds of requests waiting for a connection, in order
    this._t = new Map(); // key -> [wall-clock deadline, fn]
    this._late = new Set(); // traceId+command of replies nobody waits for any more
    this._pos = checkPositions(o.since);
    this._p = o.random().toString(36).slice(2, 8) + '-';
    this._n = 0;
    this._att = 0; // reconnect attempts since the last stable connection
    this._gen = 0; // bumped by every attempt: an older attempt's awaits end there
    this._had = Object.keys(this._pos).length; // a connection was up before, or positions were given
    this._ws = this._old = null; // the current socket, the one a move retires
  }

  // ---- public API

  connect() {
    if (this.state == 'disconnected') {
      this._att = 0;
      this._bad = null;
      this._net(1);
      this._state('connecting');
      this._open('connect');
    }
    return this;
  }

  disconnect() {
    this._stop(1000, 'disconnect() called');
  }

  ready(timeout = this.o.timeout) {
    if (this.state == 'connected') return Promise.resolve(this.welcome);
    return new Promise((ok, no) => {
      if (this.state == 'disconnected') return no(this._error('disconnected'));
      const k = {};
      const done = (f, v) => {
        a();
        b();
        this._clear(k);
        f(v);
      };
      const a = this.onEvent('connected', (w) => done(ok, w));
      const b = this.onEvent('disconnected', () => done(no, this._error('disconnected')));
      this._at(k, timeout, () => done(no, this._error('timeout', `not connected within ${timeout} ms`)));
    });
  }

  // Resolves with the reply's data on code 0, rejects with a WsgwError
  // otherwise. Waits for a connection up to `timeout` (queue: false fails at
  // once instead); never replayed after a drop.
  request(command, data, { timeout = this.o.timeout, signal, queue = true, token } = {}) {
    return new Promise((ok, no) => {
      const id = this._p + (++this._n).toString(36);
      const r = { c: command, d: data, token, ok, no };
      r.fail = (code, message) => {
        this._done(id);
        no(this._error(code, message, { traceId: id, command, sent: !!r.ws }));
      };
      if (signal && signal.aborted) return no(this._error('aborted', null, { command, sent: false }));
      if (this.state == 'disconnected') return no(this._error('disconnected', null, { command, sent: false }));
      if (signal) {
        const f = () => r.fail('aborted');
        signal.addEventListener('abort', f, { once: true });
        r.off = () => signal.removeEventListener('abort', f);
      }
      this._req.set(id, r);
      this._at(id, timeout, () => r.fail('timeout', `no reply to ${command} within ${timeout} ms`));
      const ws = this._ws;
      if (ws && ws._up) this._send(ws, id, r);
      else if (!queue) r.fail('disconnected', 'not connected (queue: false)');
      else if (this._q.length >= this.o.queueLimit) r.fail('queue_full', `${this.o.queueLimit} requests already wait for a connection`);
      else this._q.push(id);
    });
  }

  // Pushes of one command ('*': every push). The same handler is called once
  // however often it is added. Returns the function that removes it.
  on(command, handler) {
    return this._add(command, handler);
  }

  // Client events: state, connecting, connected, disconnected, error,
  // recovered, reset, auth.
  onEvent(event, handler) {
    return this._add('@' + event, handler);
  }

  // The last position delivered per key ({user: {epoch, seq}, ...}); give it
  // back as `since` to resume after a reload.
  positions() {
    return checkPositions(this._pos);
  }

  // ---- events

  _add(k, f) {
    let s = this._h.get(k);
    if (!s) this._h.set(k, (s = new Set()));
    s.add(f);
    return () => s.delete(f);
  }

  // Calls the handlers of k, each in its own try; returns how many there were.
  _emit(k, ...a) {
    const s = this._h.get(k);
    if (!s) return 0;
    for (const f of [...s]) {
      try {
        f(...a);
      } catch (error) {
        if (k == '@error') console.error('wsgw: error handler threw', error);
        else this._fail(error, k);
      }
    }
    return s.size;
  }

  _fail(error, where) {
    if (!this._emit('@error', { error, where })) console.error('wsgw:', where, error);
  }

  _state(s) {
    const previous = this.state;
    if (s != previous) {
      this.state = s;
      this._emit('@state', { state: s, previous });
    }
  }

  _error(code, message, extra) {
    const text = {
      disconnected: 'the client is disconnected',
      closed: 'the connection closed before the reply: the request may or may not have run',
      aborted: 'aborted by its signal',
    };
    return new WsgwError(code, message || text[code] || code, { retryable: code == 'closed' || code == 'timeout', ...extra });
  }

  // ---- timers: wall-clock deadlines, one real timer for all of them

  _at(k, ms, fn) {
    this._t.set(k, [this._now() + ms, fn]);
    this._arm();
  }

  _clear(k) {
    this._t.delete(k);
  }

  _arm() {
    this._unset(this._tm);
    let at = Infinity;
    for (const [t] of this._t.values()) if (t < at) at = t;
    this._tm = at < Infinity ? this._set(() => this._tick(), Math.max(0, Math.min(at - this._now(), TICK_MS))) : null;
  }

  _tick() {
    const now = this._now();
    for (const [k, [at, fn]] of this._t) {
      if (at <= now) {
        this._t.delete(k);
        fn();
      }
    }
    this._arm();
  }

  // ---- connecting

  _token(reason) {
    const g = this.o.getToken;
    if (!g) return Promise.resolve();
    // One getToken at a time: every caller shares the one in flight. One that
    // never answers fails after connectTimeout, so it cannot block the client.
    if (this._tp) return this._tp;
    const ms = this.o.connectTimeout;
    const p = (this._tp = new Promise((ok, no) => {
      const k = {};
      this._at(k, ms, () => no(new Error(`getToken did not answer within ${ms} ms`)));
      Promise.resolve()
        .then(() => g({ reason }))
        .then((t) => (t == null ? no(new UnauthorizedError('getToken returned ' + t)) : ok(t)), no)
        .finally(() => this._clear(k));
    }).finally(() => this._tp == p && (this._tp = null)));
    return p;
  }

  async _open(reason) {
    const gen = ++this._gen;
    const o = this.o;
    let token;
    try {
      token = await this._token(reason);
    } catch (e) {
      if (gen != this._gen) return;
      if (unauthorized(e)) return this._stop(0, 'unauthorized: ' + e.message);
      this._fail(e, 'getToken');
      return this._retry('backoff', 0, 'getToken failed');
    }
    if (gen != this._gen) return;
    if (token != null && token === this._bad) return this._stop(4006, 'getToken returned the token the gateway refused');
    const u = new URL(typeof this.url == 'function' ? this.url() : this.url, globalThis.location?.href);
    const protocols = o.subprotocol ? [o.subprotocol] : [];
    if (token != null) {
      if (o.tokenVia != 'query' && SUBPROTOCOL_SAFE.test(token)) protocols.push('bearer.' + token);
      else u.searchParams.set('token', token);
    }
    const since = this._since();
    if (since) u.searchParams.set('since', since);
    let ws;
    try {
      ws = new this.WS(u.href, protocols);
    } catch (e) {
      this._fail(e, 'WebSocket');
      return this._stop(0, 'cannot open a WebSocket: ' + e.message);
    }
    ws._tok = token;
    ws._since = !!since;
    ws._rec = new Set();
    ws.onmessage = (e) => this._msg(ws, e.data);
    ws.onclose = (e) => this._closed(ws, e.code, e.reason);
    ws.onerror = () => {}; // the close event that follows decides
    this._ws = ws;
    this._at('open', o.connectTimeout, () => this._lost(ws, 1006, `no WELCOME within ${o.connectTimeout} ms`));
  }

  _since() {
    const u = this._pos.user;
    const a = this._pos.all;
    return u && a && u.epoch == a.epoch ? `${u.epoch}:${u.seq}:${a.seq}` : '';
  }

  _welcome(ws, d) {
    const o = this.o;
    const rec = d && d.recovery;
    this._clear('open');
    ws._up = this._rx = this._now();
    this._probe = 0;
    this.welcome = d;
    this._at('stable', o.stableAfter, () => {
      this._att = 0;
      this._bad = null;
    });
    this._live();
    for (const key of ['user', 'all']) {
      if (!rec) continue;
      // A key with a position that was not resumed cannot know what it missed.
      if (this._pos[key] && !ws._since) this._emit('@reset', { key, recovered: false, reason: 'not_resumed' });
      if (!this._pos[key] || !ws._since) this._pos[key] = { epoch: rec.epoch, seq: rec.seq };
    }
    if (!rec && this._had) this._emit('@reset', { key: '*', recovered: false, reason: 'unsupported' });
    this._had = 1;
    this._state('connected');
    this._emit('@connected', d);
    for (const id of this._q.splice(0)) {
      const r = this._req.get(id);
      if (r) this._send(ws, id, r);
    }
    if (!(rec && ws._since)) this._retire(1);
  }

  // Any close of the current socket, or a local decision that it is dead.
  _lost(ws, code, reason) {
    if (ws != this._ws) return;
    this._ws = null;
    this._drop(ws);
    for (const k of ['open', 'live', 'stable']) this._clear(k);
    const a = closeAction(code);
    if (a == 'stop') return this._stop(code, reason);
    if (a == 'token-once') {
      if (this._bad) return this._stop(code, reason);
      this._bad = ws._tok ?? true;
    }
    this._retry(a, code, reason, ws._up && this._now() - ws._up >= this.o.stableAfter);
  }

  _retry(a, code, reason, stable) {
    const o = this.o;
    const delay =
      stable && a != 'backoff'
        ? a == 'restart'
          ? Math.floor(o.random() * o.restartSpread)
          : 0
        : backoff(this._att++, o.minReconnectDelay, o.maxReconnectDelay, o.random);
    if (!this._old) this._state('connecting');
    this._emit('@connecting', { code, reason, attempt: this._att, delay });
    this._gen++;
    this._at('retry', delay, () => this._open(a == 'token' ? 'expired' : a == 'token-once' ? 'invalid' : 'reconnect'));
  }

  _stop(code, reason) {
    this._gen++;
    this._tp = null; // its timeout is cleared below: a later connect() asks anew
    for (const ws of [this._ws, this._old]) if (ws) this._drop(ws);
    this._ws = this._old = null;
    this._t.clear();
    this._arm();
    this._q = [];
    for (const r of [...this._req.values()]) r.fail(r.ws ? 'closed' : 'disconnected');
    this._net(0);
    const was = this.state;
    this._state('disconnected');
    if (was != 'disconnected') this._emit('@disconnected', { code, reason });
  }

  // Closes ws for good: no event of it is seen any more; its requests fail.
  _drop(ws, code = 1000) {
    ws.onclose = ws.onmessage = null;
    try {
      ws.close(code);
    } catch {}
    for (const r of [...this._req.values()]) if (r.ws == ws) r.fail('closed');
  }

  _closed(ws, code, reason) {
    if (ws == this._old) {
      this._old = null;
      this._drop(ws);
      if (!(this._ws && this._ws._up)) this._state('connecting');
    } else this._lost(ws, code, reason);
  }

  // ---- messages

  _send(ws, id, r) {
    r.ws = ws;
    const m = { command: r.c, traceId: id, data: r.d };
    if (r.token != null) m.token = r.token;
    try {
      ws.send(JSON.stringify(m));
    } catch (e) {
      r.fail('closed', 'send failed: ' + e.message);
    }
  }

  _done(id) {
    const r = this._req.get(id);
    if (!r) return;
    this._req.delete(id);
    this._clear(id);
    if (r.off) r.off();
    const i = this._q.indexOf(id);
    if (i >= 0) this._q.splice(i, 1);
    // Its reply may still come: it must not be taken for a push.
    if (r.ws) this._lateAdd(id + r.c);
  }

  _lateAdd(k) {
    this._late.add(k);
    if (this._late.size > LATE_KEEP) this._late.delete(this._late.values().next().value);
  }

  _msg(ws, raw) {
    if (ws != this._ws && ws != this._old) return;
    if (ws == this._ws) {
      this._rx = this._now();
      this._probe = 0;
    }
    let m;
    try {
      m = JSON.parse(raw);
      if (!m || typeof m.command != 'string') throw new TypeError('not a wsgw message');
    } catch (e) {
      return this._fail(e, 'message');
    }
    const { command: c, traceId: id, data: d } = m;
    const r = this._req.get(id);
    if (r && r.c == c) {
      r.ws = null; // answered: not late
      this._done(id);
      if (m.code) r.no(new WsgwError(m.code, m.message, { traceId: id, command: c, data: d, sent: true }));
      else r.ok(d);
      return this._retire();
    }
    if (this._late.delete(id + c)) return;
    if (c == 'RECOVERY') return this._recovery(ws, m.code, d || {});
    if (ws == this._ws) {
      if (c == 'WELCOME') return ws._up || this._welcome(ws, d || {});
      if (c == 'TOKEN_EXPIRING') return this._refresh(ws);
      if (c == 'RECONNECT') return this._move();
    } else if (c == 'WELCOME' || c == 'TOKEN_EXPIRING' || c == 'RECONNECT') return;
    const p = m.pos;
    if (okPos(p)) {
      const cur = this._pos[p.key];
      if (cur && cur.epoch == p.epoch && p.seq <= cur.seq) return; // delivered already
      this._pos[p.key] = { epoch: p.epoch, seq: p.seq };
    }
    this._emit(c, d, m);
    this._emit('*', d, m);
  }

  // ---- liveness: any frame proves it; silence past the gateway's heartbeat
  // interval plus a margin sends HEALTH, and silence after that is a dead
  // connection (browsers cannot see WebSocket pings).

  _live() {
    const ws = this._ws;
    if (!ws || !ws._up) return;
    const m = this.o.livenessMargin;
    const quiet = (this.welcome.heartbeatIntervalMs || 25000) + m;
    const silent = this._now() - this._rx;
    if (this._probe && this._now() - this._probe >= m) return this._lost(ws, 1006, `no frame for ${silent} ms, HEALTH unanswered`);
    if (!this._probe && silent >= quiet) {
      this._probe = this._now();
      const id = this._p + 'h' + (++this._n).toString(36);
      this._lateAdd(id + 'HEALTH');
      this._send(ws, id, { c: 'HEALTH' });
    }
    this._at('live', this._probe ? m : quiet - silent, () => this._live());
  }

  // ---- tokens: TOKEN_EXPIRING -> getToken -> AUTH, once per connection at a
  // time; a result for an older connection is dropped.

  async _refresh(ws) {
    if (ws._rf) return;
    ws._rf = 1;
    for (let n = 0; ws == this._ws; n++) {
      try {
        const token = await this._token('expiring');
        if (ws != this._ws) break;
        const d = await this.request('AUTH', undefined, { queue: false, token });
        this._emit('@auth', d);
        break;
      } catch (e) {
        if (ws != this._ws) break;
        if (unauthorized(e)) return this._stop(0, 'unauthorized: ' + e.message);
        this._fail(e, 'refresh');
        if (e.code == 409) break; // a token of another user: the app must reconnect
        const k = {};
        await new Promise((ok) => this._at(k, backoff(n, 1000, this.o.maxReconnectDelay, this.o.random), ok));
      }
    }
    ws._rf = 0;
  }

  // ---- make-before-break (RECONNECT) and recovery

  _move() {
    if (this._old) return;
    this._old = this._ws;
    this._ws = null;
    for (const k of ['live', 'stable']) this._clear(k);
    this._open('reconnect');
  }

  // Closes the retiring socket once the new one is in place (go) and the
  // old one has no request waiting for its reply.
  _retire(go) {
    const old = this._old;
    if (!old) return;
    if (go) old._go = 1;
    if (!old._go) return;
    for (const r of this._req.values()) if (r.ws == old) return;
    this._old = null;
    this._drop(old);
  }

  _recovery(ws, code, d) {
    const { key, epoch, seq } = d;
    if (!okPos(d)) {
      return this._fail(new TypeError('bad RECOVERY: ' + JSON.stringify(d)), 'recovery');
    }
    const cur = this._pos[key];
    if (!code && d.recovered) {
      if (!cur || cur.epoch != epoch || cur.seq < seq) this._pos[key] = { epoch, seq };
      this._emit('@recovered', d);
    } else {
      this._pos[key] = { epoch, seq };
      this._emit('@reset', { ...d, recovered: false, code });
    }
    ws._rec.add(key);
    if (ws == this._ws && ws._rec.has('user') && ws._rec.has('all')) this._retire(1);
  }

  // ---- the network and the page

  _net(on) {
    const o = this.o;
    const t = 'networkEvents' in o ? o.networkEvents : globalThis.addEventListener && globalThis;
    if (!t) return;
    const h = (this._nh ||= {
      online: () => {
        if (this._t.has('retry')) {
          this._clear('retry');
          this._open('online');
        }
      },
      // An open socket does not notice that the network went away.
      offline: () => {
        if (this._old) this._closed(this._old);
        if (this._ws) this._lost(this._ws, 1006, 'offline');
      },
      // A page that wakes up checks its deadlines against the wall clock.
      visibilitychange: () => this._tick(),
      pageshow: () => this._tick(),
      focus: () => this._tick(),
    });
    for (const k in h) t[on ? 'addEventListener' : 'removeEventListener'](k, h[k]);
  }
}
