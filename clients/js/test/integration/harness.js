// Starts the real thing for the integration and browser tests: a nats-server,
// wsgw gateways (auth.mode jwt, HS256, the repository's command scripts) and
// tools/example_service, all on loopback ports the OS picks. Every wait is
// bounded; every child is killed when the test process ends, and with
// setpriv --pdeathsig even when it is killed.
//
// Environment (set by tests/integration/js.cmake):
//   WSGW_BINARY, EXAMPLE_SERVICE, WSGW_CLI   the built binaries
//   WSGW_SOURCE_DIR                          the repository (scripts/commands)
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { Client } from '../../src/client.js';

const HOST = '127.0.0.1';

function need(name) {
  const v = process.env[name];
  if (!v || !existsSync(v)) throw new Error(`${name}=${v}: set it to the built file (tests/integration/js.cmake does)`);
  return v;
}

export const env = () => ({
  wsgw: need('WSGW_BINARY'),
  service: need('EXAMPLE_SERVICE'),
  cli: need('WSGW_CLI'),
  source: need('WSGW_SOURCE_DIR'),
});

// Calls pred until it returns something truthy (returned) or `ms` pass (throws
// with `what`). At most ms/interval + 1 calls.
export async function waitFor(pred, ms, what, interval = 25) {
  const end = Date.now() + ms;
  for (let i = 0; i <= ms / interval + 1; i++) {
    const v = await pred();
    if (v) return v;
    if (Date.now() >= end) break;
    await sleep(interval);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
});

const hasSetpriv = existsSync('/usr/bin/setpriv');

// A child process whose stderr lines are kept (and parsed when JSON).
class Proc {
  constructor(cmd, args, name) {
    this.name = name;
    this.lines = [];
    this.waiters = new Set();
    const argv = hasSetpriv ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
    this.proc = spawn(argv[0], argv[1], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(this.proc);
    this.exited = new Promise((r) =>
      this.proc.on('exit', (code, signal) => {
        live.delete(this.proc);
        this.exitCode = code ?? signal;
        r(this.exitCode);
        this._wake();
      })
    );
    let buf = '';
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      buf += chunk;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) this.lines.push(buf.slice(0, i));
      this._wake();
    });
  }
  _wake() {
    for (const w of [...this.waiters]) w();
  }
  events() {
    return this.lines.flatMap((l) => {
      try {
        const o = JSON.parse(l);
        return o && typeof o === 'object' ? [o] : [];
      } catch {
        return [];
      }
    });
  }
  // The first JSON log line with pred(line), waiting up to ms.
  waitLog(pred, ms, what) {
    return new Promise((ok, no) => {
      const check = () => {
        const hit = this.events().find(pred);
        if (hit || this.exitCode !== undefined) {
          this.waiters.delete(check);
          clearTimeout(t);
          return hit ? ok(hit) : no(new Error(`${this.name} exited (${this.exitCode}) before ${what}:\n${this.tail()}`));
        }
      };
      const t = setTimeout(() => {
        this.waiters.delete(check);
        no(new Error(`${this.name}: no ${what} within ${ms} ms:\n${this.tail()}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }
  tail(n = 30) {
    return this.lines.slice(-n).join('\n');
  }
  alive() {
    return this.exitCode === undefined;
  }
  async stop(signal = 'SIGTERM', ms = 10000) {
    if (!this.alive()) return this.exitCode;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

export class Stack {
  constructor() {
    this.e = env();
    this.dir = mkdtempSync(join(tmpdir(), 'wsgw-js-'));
    this.secretFile = join(this.dir, 'secret');
    writeFileSync(this.secretFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    this.procs = [];
    this.clients = [];
    this.gateways = [];
  }

  // jetstream: with a store under the stack's directory (recovery needs it).
  async nats({ jetstream = false } = {}) {
    const bin = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
    const js = jetstream ? ['-js', '-sd', join(this.dir, 'jetstream')] : [];
    const p = new Proc(bin, ['-a', HOST, '-p', '-1', '-ports_file_dir', this.dir, ...js], 'nats-server');
    this.procs.push(p);
    const file = join(this.dir, `nats-server_${p.proc.pid}.ports`);
    const info = await waitFor(() => {
      if (!p.alive()) throw new Error('nats-server exited:\n' + p.tail());
      try {
        const j = JSON.parse(readFileSync(file, 'utf8'));
        return j.nats && j.nats[0] ? j : null;
      } catch {
        return null; // not written yet
      }
    }, 10000, 'the nats-server ports file');
    this.natsUrl = info.nats[0];
    return this.natsUrl;
  }

  // A gateway on an OS-picked port. `args`: more --section.key=value.
  async gateway(id, args = []) {
    const p = new Proc(
      this.e.wsgw,
      [
        '--server.address=' + HOST,
        '--server.port=0',
        '--gateway.id=' + id,
        '--gateway.workers=2',
        '--nats.url=' + this.natsUrl,
        '--auth.mode=jwt',
        '--auth.jwt.secret_file=' + this.secretFile,
        '--scripts.dir=' + join(this.e.source, 'scripts/commands'),
        '--admin.port=0',
        '--drain.window_ms=1000',
        ...args,
      ],
      'wsgw ' + id
    );
    this.procs.push(p);
    const l = await p.waitLog((o) => o.event === 'listening', 15000, 'listening');
    p.id = id;
    p.port = l.port;
    p.url = `ws://${HOST}:${l.port}/ws`;
    this.gateways.push(p);
    return p;
  }

  async service() {
    const p = new Proc(this.e.service, ['--nats', this.natsUrl], 'example_service');
    this.procs.push(p);
    return p;
  }

  // An HS256 token from `wsgw token` (the gateway's own minting).
  token(user, ttl = 3600, name = user) {
    return new Promise((ok, no) =>
      execFile(this.e.wsgw, ['token', '--auth.jwt.secret_file=' + this.secretFile, '--user', user, '--name', name, '--ttl', String(ttl)], { timeout: 10000 }, (err, out, errOut) =>
        err ? no(new Error(`wsgw token: ${err.message} ${errOut}`)) : ok(out.trim())
      )
    );
  }

  // wsgw-cli publish/ctl against this stack's NATS.
  cli(...args) {
    const [verb, ...rest] = args;
    return new Promise((ok, no) =>
      execFile(this.e.cli, [verb, '--nats', this.natsUrl, ...rest], { timeout: 10000 }, (err, out, errOut) =>
        err ? no(new Error(`wsgw-cli ${args.join(' ')}: ${err.message} ${errOut}`)) : ok(out)
      )
    );
  }

  push(user, command, data) {
    return this.cli('publish', '--user', user, '--command', command, '--data', JSON.stringify(data));
  }

  // A raw NATS connection for fast publishing (PUB only): pub(subject, obj)
  // queues, flush() resolves once the server has processed everything sent.
  async publisher() {
    const u = new URL(this.natsUrl);
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((ok, no) => sock.once('connect', ok).once('error', no));
    let pongs = 0;
    const waiting = [];
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      for (const line of d.split('\r\n')) {
        if (line === 'PING') sock.write('PONG\r\n');
        if (line === 'PONG') pongs++;
      }
      while (waiting.length && waiting[0][0] <= pongs) waiting.shift()[1]();
    });
    sock.write('CONNECT {"verbose":false,"pedantic":false,"name":"wsgw-js-test"}\r\n');
    let pings = 0;
    const p = {
      pub(subject, obj) {
        const body = Buffer.from(JSON.stringify(obj));
        sock.write(`PUB ${subject} ${body.length}\r\n`);
        sock.write(body);
        sock.write('\r\n');
      },
      flush(ms = 10000) {
        const n = ++pings;
        sock.write('PING\r\n');
        return Promise.race([
          new Promise((ok) => waiting.push([n, ok])),
          sleep(ms, null, { ref: false }).then(() => {
            throw new Error('NATS flush timed out');
          }),
        ]);
      },
      close: () => sock.destroy(),
    };
    this.procs.push({ stop: async () => p.close(), tail: () => '', name: 'publisher' });
    return p;
  }

  // A Client of `user` (Node's WebSocket from the ws package) that records its
  // events; closed by stop().
  client(user, options = {}, url = () => this.gateways.find((g) => g.alive()).url) {
    const c = new Client(url, { WebSocket, getToken: () => this.token(user), random: Math.random, ...options });
    c.log = [];
    for (const e of ['connecting', 'connected', 'disconnected', 'error', 'reset', 'auth']) c.onEvent(e, (a) => c.log.push([e, a]));
    c.named = (e) => c.log.filter((x) => x[0] === e).map((x) => x[1]);
    this.clients.push(c);
    return c;
  }

  // ECHO answers once the example service has joined NATS.
  async serviceReady(ms = 15000) {
    const probe = this.client('probe');
    probe.connect();
    await probe.ready(ms);
    await waitFor(() => probe.request('ECHO', 'ping', { timeout: 2000 }).then(() => true, () => false), ms, 'the example service answering ECHO', 200);
    probe.disconnect();
  }

  logs() {
    return this.procs.map((p) => `--- ${p.name} ---\n${p.tail(15)}`).join('\n');
  }

  async stop() {
    for (const c of this.clients) c.disconnect();
    await Promise.all(this.procs.map((p) => p.stop('SIGKILL', 5000)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startStack({ gateways = ['gw1'], gatewayArgs = [], jetstream = false } = {}) {
  const s = new Stack();
  try {
    await s.nats({ jetstream });
    for (const id of gateways) await s.gateway(id, gatewayArgs);
    await s.service();
    await s.serviceReady();
    return s;
  } catch (e) {
    const logs = s.logs();
    await s.stop();
    e.message += '\n' + logs;
    throw e;
  }
}

