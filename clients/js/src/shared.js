// One connection for all the tabs of an origin (opt-in). The tabs elect a
// leader with a Web Lock; the leader holds the only WebSocket (a Client) and
// relays pushes, state events and requests over a BroadcastChannel. When the
// leader tab goes away the browser frees its lock, the next tab in line takes
// over and resumes from the positions of the pushes it delivered, so nothing
// is lost or delivered twice where the gateway has recovery.
import { Client, WsgwError } from './client.js';

// Client events a leader repeats to the other tabs (errors stay in their tab).
const RELAYED = ['state', 'connecting', 'connected', 'disconnected', 'recovered', 'reset', 'auth'];

export class SharedClient {
  constructor(url, options = {}) {
    this.url = url;
    this.o = options;
    this.name = 'wsgw:' + (options.channel || String(url));
    this.state = 'disconnected';
    this.welcome = null;
    this.leader = false;
    this._h = new Map();
    this._pos = { ...options.since };
    this._req = new Map(); // id -> request sent to (or waiting for) a leader
    this._tab = Math.random().toString(36).slice(2, 10);
    this._n = 0;
    this._lid = null; // the leader tab's id
  }

  connect() {
    if (this._bc) {
      // Joined already: (re)connect the one shared connection.
      if (this._c) this._c.connect();
      else this._post({ t: 'connect' });
      return this;
    }
    const locks = globalThis.navigator && navigator.locks;
    if (!locks || !globalThis.BroadcastChannel) throw new TypeError('SharedClient needs navigator.locks and BroadcastChannel');
    this._bc = new BroadcastChannel(this.name);
    this._bc.onmessage = (e) => this._recv(e.data);
    const bc = this._bc;
    const done = new Promise((r) => (this._end = r));
    locks.request(this.name, () => this._lead(bc, done));
    this._post({ t: 'hello' });
    return this;
  }

  // Leaves: a leader hands the connection over to the next tab.
  disconnect() {
    if (!this._bc) return;
    this._end();
    this._bc.close();
    this._bc = this._c = null;
    this.leader = false;
    for (const id of [...this._req.keys()]) this._fail(id, 'disconnected');
    this._local('state', { state: 'disconnected', previous: this.state });
  }

  ready(timeout = this.o.timeout || 10000) {
    if (this.state == 'connected') return Promise.resolve(this.welcome);
    return new Promise((ok, no) => {
      const t = setTimeout(() => done(no, new WsgwError('timeout', `not connected within ${timeout} ms`)), timeout);
      const off = this.onEvent('connected', (w) => done(ok, w));
      const done = (f, v) => {
        off();
        clearTimeout(t);
        f(v);
      };
    });
  }

  request(command, data, { timeout = this.o.timeout || 10000, signal } = {}) {
    if (this._c) return this._c.request(command, data, { timeout, signal });
    return new Promise((ok, no) => {
      if (!this._bc) return no(new WsgwError('disconnected', 'not connected: call connect()', { command, sent: false }));
      const id = this._tab + '-' + ++this._n;
      const r = { ok, no, command, m: { t: 'req', id, command, data, timeout } };
      this._req.set(id, r);
      r.timer = setTimeout(() => this._fail(id, 'timeout', `no reply to ${command} within ${timeout} ms`), timeout);
      if (signal) signal.addEventListener('abort', () => this._fail(id, 'aborted', 'aborted by its signal'), { once: true });
      if (this._lid) this._ask(r);
    });
  }

  on(command, handler) {
    return this._add(command, handler);
  }

  // Client events plus `leader` ({leader: boolean}) when this tab takes or
  // leaves the connection.
  onEvent(event, handler) {
    return this._add('@' + event, handler);
  }

  positions() {
    return JSON.parse(JSON.stringify(this._pos));
  }

  // ---- inside

  _add(k, f) {
    let s = this._h.get(k);
    if (!s) this._h.set(k, (s = new Set()));
    s.add(f);
    return () => s.delete(f);
  }

  _local(ev, a) {
    if (ev == 'state') this.state = a.state;
    if (ev == 'connected') this.welcome = a;
    this._emit('@' + ev, a);
  }

  _emit(k, ...a) {
    for (const f of [...(this._h.get(k) || [])]) {
      try {
        f(...a);
      } catch (error) {
        if (k == '@error') console.error('wsgw: error handler threw', error);
        else this._emit('@error', { error, where: k }) || console.error('wsgw:', k, error);
      }
    }
    return this._h.get(k)?.size;
  }

  _post(m) {
    this._bc && this._bc.postMessage(m);
  }

  // A push, delivered once per tab: de-duplicated by position as the core
  // client does, so a push relayed by two leaders in turn counts once.
  _deliver(m) {
    const p = m.pos;
    if (p) {
      const cur = this._pos[p.key];
      if (cur && cur.epoch == p.epoch && p.seq <= cur.seq) return;
      this._pos[p.key] = { epoch: p.epoch, seq: p.seq };
    }
    this._emit(m.command, m.data, m);
    this._emit('*', m.data, m);
  }

  _ask(r) {
    r.to = this._lid;
    this._post(r.m);
  }

  _fail(id, code, message, extra) {
    const r = this._req.get(id);
    if (!r) return;
    this._req.delete(id);
    clearTimeout(r.timer);
    r.no(new WsgwError(code, message || code, { command: r.command, traceId: id, sent: !!r.to, retryable: code == 'closed' || code == 'timeout', ...extra }));
  }

  // A leader appeared: requests sent to an earlier one may be lost with it
  // (they may or may not have run: never sent again); waiting ones go now.
  _newLeader(id) {
    this._lid = id;
    for (const [rid, r] of [...this._req]) {
      if (r.to && r.to != id) this._fail(rid, 'closed', 'the leader tab went away before the reply: the request may or may not have run');
      else if (!r.to && !this._c) this._ask(r);
    }
  }

  _recv(m) {
    const c = this._c;
    if (m.t == 'push') return c || this._deliver(m.m);
    if (m.t == 'ev') return c || this._local(m.ev, m.a);
    if (m.t == 'leader') {
      this._newLeader(m.id);
      if (m.state && m.state != this.state) this._local('state', { state: m.state, previous: this.state });
      if (m.welcome && this.state == 'connected' && !this.welcome) this._local('connected', m.welcome);
      return;
    }
    if (m.t == 'res') {
      const r = this._req.get(m.id);
      if (!r) return;
      this._req.delete(m.id);
      clearTimeout(r.timer);
      return m.e ? r.no(new WsgwError(m.e.code, m.e.message, m.e)) : r.ok(m.d);
    }
    if (!c) return;
    // Only the leader answers the rest.
    if (m.t == 'hello') this._post({ t: 'leader', id: this._tab, state: c.state, welcome: c.welcome });
    if (m.t == 'connect') c.connect();
    if (m.t == 'req') {
      c.request(m.command, m.data, { timeout: m.timeout }).then(
        (d) => this._post({ t: 'res', id: m.id, d }),
        (e) => {
          const { code, message, traceId, command, data, sent, retryable } = e;
          this._post({ t: 'res', id: m.id, e: { code, message, traceId, command, data, sent, retryable } });
        }
      );
    }
  }

  // Runs while this tab holds the lock: the tab's life, or until disconnect().
  async _lead(bc, done) {
    if (this._bc != bc) return; // left (or left and joined again) while waiting
    const c = (this._c = new Client(this.url, { ...this.o, since: this._pos }));
    // Taking over from another tab is a reconnect: without recovery, pushes
    // sent meanwhile may be missing, and `reset` must say so.
    if (this._lid) c._had = 1;
    this.leader = true;
    for (const ev of RELAYED) {
      c.onEvent(ev, (a) => {
        this._local(ev, a);
        this._post({ t: 'ev', ev, a });
      });
    }
    c.onEvent('error', (a) => this._local('error', a));
    c.on('*', (d, m) => {
      this._deliver(m);
      this._post({ t: 'push', m });
    });
    this._newLeader(this._tab);
    // Requests that waited for a leader go on this tab's own connection.
    for (const [id, r] of [...this._req]) {
      this._req.delete(id);
      clearTimeout(r.timer);
      c.request(r.command, r.m.data, { timeout: r.m.timeout }).then(r.ok, r.no);
    }
    this._post({ t: 'leader', id: this._tab, state: c.state });
    this._emit('@leader', { leader: true });
    c.connect();
    await done;
    c.disconnect();
  }
}
