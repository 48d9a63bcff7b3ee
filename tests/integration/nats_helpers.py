"""Shared helpers for the NATS integration tests of wsgw (docs/PROTOCOL.md §6).

Runs under Debian's /usr/bin/python3 with python3-websockets 10.4 (asyncio
API only; `websockets.sync` does not exist there). Everything binds to
127.0.0.1; every port is chosen by the OS (nats-server `-1` ports read back
from its ports file, the gateway's `--server.port=0` read back from its
`listening` log line), so test files and test methods can run in parallel.

What is here:
  NatsServer      one real nats-server (Debian's 2.9) with client, monitor and
                  optionally cluster ports; kill, restart on the same port,
                  monitoring endpoints (/connz, /subsz, /routez).
  NatsCluster     three NatsServers joined into one cluster on loopback.
  NatsClient      a tiny raw NATS protocol client over a socket (PUB, SUB,
                  UNSUB, PING/PONG, MSG and HMSG parsing).
  Service         a responder: subscribes to a subject in its own client and
                  answers each request with a function of the envelope.
  Gateway         the wsgw binary (env WSGW_BINARY) as a child process; keeps
                  every stderr line.
  WsClient        a synchronous facade over a websockets 10.4 connection run
                  on a background asyncio loop.
  Resources       a registry of everything started, so a test's cleanup (and
                  atexit) kills all of it, failure or not.
  http_call       one HTTP request whose error statuses are returned, not
                  raised (the admin API); parse_prometheus reads /metrics.

Every wait is bounded in time (and every loop in count).
"""

import asyncio
import atexit
import ctypes
import glob
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import websockets
import websockets.exceptions as wsexc

HOST = "127.0.0.1"
IO_TIMEOUT = 5.0          # one reply, one log line, one HTTP call
SUB_TIMEOUT = 5.0         # a subscription becoming visible on the server
SILENCE = 0.5             # window in which "nothing arrives" is asserted
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"

# Children get SIGKILL when this process dies, even by SIGKILL (a ctest
# timeout): prctl(PR_SET_PDEATHSIG). Resolved before any fork.
_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# Processes started by this module, killed at exit whatever happened.
_LIVE_PROCS = set()
_LIVE_LOCK = threading.Lock()


def _track(proc):
    with _LIVE_LOCK:
        _LIVE_PROCS.add(proc)


def _untrack(proc):
    with _LIVE_LOCK:
        _LIVE_PROCS.discard(proc)


@atexit.register
def _kill_leftovers():
    with _LIVE_LOCK:
        procs = list(_LIVE_PROCS)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


def wait_until(pred, timeout, interval=0.05):
    """Calls pred() until it returns a truthy value (returned) or `timeout`
    seconds pass (None). At most timeout/interval + 1 calls."""
    deadline = time.monotonic() + timeout
    max_calls = int(timeout / interval) + 2
    for _ in range(max_calls):
        value = pred()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(interval, left))
    return None


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url, timeout=2.0):
    """GET url (never through a proxy) and parse its JSON body."""
    with _NO_PROXY.open(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _kill_proc(proc, sig=signal.SIGKILL, timeout=10.0):
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    _untrack(proc)
    return proc.returncode


# --------------------------------------------------------------------------
# nats-server


class NatsServer:
    """One nats-server on loopback. Ports are picked by the server itself
    (`-1`) and read back from the ports file (`-ports_file_dir`); a restart
    reuses the client port it had."""

    def __init__(self, workdir, name="n", cluster_name=None, routes=(), client_port=-1):
        self.workdir = workdir
        self.name = name
        self.cluster_name = cluster_name
        self.routes = list(routes)
        self.client_port = client_port
        self.monitor_port = None
        self.cluster_port = None
        self.proc = None
        self.log_path = os.path.join(workdir, name + ".log")
        self.ports_dir = os.path.join(workdir, name + ".ports.d")
        os.makedirs(self.ports_dir, exist_ok=True)

    # The config text: client, monitor and (optionally) cluster listeners.
    def config_text(self, client_port):
        lines = [
            'server_name: "%s"' % self.name,
            'listen: "%s:%d"' % (HOST, client_port),
            'http: "%s:-1"' % HOST,
        ]
        if self.cluster_name:
            lines.append("cluster {")
            lines.append('  name: "%s"' % self.cluster_name)
            lines.append('  listen: "%s:-1"' % HOST)
            if self.routes:
                lines.append("  routes: [")
                lines.extend('    "%s"' % r for r in self.routes)
                lines.append("  ]")
            lines.append("}")
        return "\n".join(lines) + "\n"

    def start(self, timeout=10.0):
        """Starts the server; retries a fixed client port (restart) while it
        is still taken. Raises RuntimeError with the log tail on failure."""
        attempts = 1 if self.client_port == -1 else 15
        last_error = ""
        for _ in range(attempts):
            err = self._start_once(timeout)
            if err is None:
                return self
            last_error = err
            time.sleep(0.2)
        raise RuntimeError("nats-server %s did not start: %s" % (self.name, last_error))

    def _start_once(self, timeout):
        conf = os.path.join(self.workdir, self.name + ".conf")
        with open(conf, "w") as f:
            f.write(self.config_text(self.client_port))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER, "-c", conf, "-ports_file_dir", self.ports_dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent)
        _track(self.proc)
        pattern = os.path.join(self.ports_dir, "*_%d.ports" % self.proc.pid)

        def read_ports():
            if self.proc.poll() is not None:
                return {"exited": self.proc.returncode}
            for path in glob.glob(pattern):
                try:
                    with open(path) as f:
                        data = json.load(f)
                except (OSError, ValueError):
                    return None  # being written
                if data.get("nats") and data.get("monitoring"):
                    return data
            return None

        ports = wait_until(read_ports, timeout)
        if ports is None or "exited" in ports:
            _kill_proc(self.proc)
            return "ports file not written (%s); log:\n%s" % (ports, self.log_tail())
        self.client_port = _port_of(ports["nats"][0])
        self.monitor_port = _port_of(ports["monitoring"][0])
        if self.cluster_name:
            if not ports.get("cluster"):
                _kill_proc(self.proc)
                return "no cluster port in the ports file: %r" % ports
            self.cluster_port = _port_of(ports["cluster"][0])
        # The monitor answering means the server finished starting.
        ok = wait_until(lambda: self._varz_ok(), timeout)
        if not ok:
            _kill_proc(self.proc)
            return "monitor did not answer; log:\n" + self.log_tail()
        return None

    def _varz_ok(self):
        try:
            return http_json(self.monitor_url("/varz"), 1.0).get("port") == self.client_port
        except OSError:
            return False

    @property
    def url(self):
        return "nats://%s:%d" % (HOST, self.client_port)

    @property
    def cluster_url(self):
        return "nats://%s:%d" % (HOST, self.cluster_port)

    def monitor_url(self, path):
        return "http://%s:%d%s" % (HOST, self.monitor_port, path)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: the node disappears without a goodbye."""
        _kill_proc(self.proc, signal.SIGKILL)

    def stop(self):
        _kill_proc(self.proc, signal.SIGTERM, timeout=5.0)

    def restart(self, timeout=10.0):
        """Starts again on the same client port (monitor port: a new one)."""
        if self.alive():
            self.kill()
        return self.start(timeout)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    # Monitoring.
    def connz(self):
        return http_json(self.monitor_url("/connz?subs=1&limit=4096"))

    def routez(self):
        return http_json(self.monitor_url("/routez"))

    def subsz(self):
        return http_json(self.monitor_url("/subsz?subs=1&limit=4096"))

    def conn_subjects(self, conn_name):
        """Subjects subscribed by the client connection named conn_name on
        this node (sorted list, duplicates kept), or None when no such
        connection is here."""
        try:
            data = self.connz()
        except OSError:
            return None
        for c in data.get("connections") or []:
            if c.get("name") == conn_name:
                return sorted(c.get("subscriptions_list") or [])
        return None


def _port_of(url):
    return int(url.rsplit(":", 1)[1].strip("/"))


class NatsCluster:
    """Three nodes a, b, c on loopback. a is started first with a cluster
    listener; b and c route to a and learn each other from it (gossip), so
    every port stays OS-picked. Ready when /routez shows 2 routes on each.
    `register` is called with each node before it starts (so a caller can
    kill what started even when a later node fails)."""

    def __init__(self, workdir, cluster_name="wsgwit", register=None):
        self.nodes = []
        register = register or (lambda n: n)
        a = NatsServer(workdir, "a", cluster_name=cluster_name)
        self.nodes.append(register(a))
        a.start()
        for name in ("b", "c"):
            n = NatsServer(workdir, name, cluster_name=cluster_name, routes=[a.cluster_url])
            self.nodes.append(register(n))
            n.start()

    def wait_formed(self, timeout=20.0):
        def formed():
            for n in self.nodes:
                if not n.alive():
                    return False
                try:
                    if n.routez().get("num_routes") != 2:
                        return False
                except OSError:
                    return False
            return True

        if not wait_until(formed, timeout, 0.1):
            counts = []
            for n in self.nodes:
                try:
                    counts.append((n.name, n.routez().get("num_routes")))
                except OSError as e:
                    counts.append((n.name, str(e)))
            raise RuntimeError("cluster did not form within %.0f s: routes %r" % (timeout, counts))
        return self

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def kill_all(self):
        for n in self.nodes:
            n.kill()


# --------------------------------------------------------------------------
# Raw NATS protocol client


class Msg:
    __slots__ = ("subject", "sid", "reply", "headers", "payload")

    def __init__(self, subject, sid, reply, headers, payload):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.headers = headers  # raw header block (bytes) or None
        self.payload = payload  # bytes

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    def __repr__(self):
        return "Msg(%s, reply=%s, %r)" % (self.subject, self.reply, self.payload[:200])


class Subscription:
    def __init__(self, client, sid, subject, callback):
        self.client = client
        self.sid = sid
        self.subject = subject
        self.callback = callback
        self.queue = queue.Queue()

    def next(self, timeout=IO_TIMEOUT):
        """The next message, or None after timeout."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def unsubscribe(self):
        self.client.unsub(self.sid)


class NatsClient:
    """Just enough of the NATS client protocol for tests. A reader thread
    parses INFO, MSG, HMSG, PING, PONG, +OK and -ERR; callbacks run on it."""

    def __init__(self, url, name="wsgw-it-client", timeout=IO_TIMEOUT):
        hostport = url.split("://", 1)[-1].split(",")[0]
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(None)
        self._wlock = threading.Lock()
        self._buf = b""
        self._closed = False
        self._subs = {}
        self._next_sid = 1
        self._pongs = threading.Condition()
        self._pong_count = 0
        self.errors = []
        self.info = None
        # INFO first, then CONNECT + PING; PONG means the server accepted us.
        first = self._read_line_blocking(timeout)
        if not first.startswith(b"INFO "):
            raise RuntimeError("no INFO from %s: %r" % (url, first))
        self.info = json.loads(first[5:])
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": name, "lang": "python-raw", "version": "0"}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        if not self.flush(timeout):
            self.close()
            raise RuntimeError("no PONG from %s; errors %r" % (url, self.errors))

    def _read_line_blocking(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("timeout reading from NATS")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("NATS closed the connection")
            self._buf += chunk
        self.sock.settimeout(None)
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _send(self, data):
        with self._wlock:
            self.sock.sendall(data)

    def _reader(self):
        try:
            while not self._closed:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self._buf += chunk
                self._parse()
        except OSError:
            pass
        finally:
            self._closed = True
            with self._pongs:
                self._pongs.notify_all()

    def _parse(self):
        while True:
            end = self._buf.find(b"\r\n")
            if end < 0:
                return
            line = self._buf[:end]
            op = line.split(b" ", 1)[0].upper()
            if op in (b"MSG", b"HMSG"):
                parts = line.decode().split()
                if op == b"MSG":
                    # MSG <subject> <sid> [reply-to] <#bytes>
                    subject, sid = parts[1], int(parts[2])
                    reply = parts[3] if len(parts) == 5 else None
                    hdr_len, total = 0, int(parts[-1])
                else:
                    # HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
                    subject, sid = parts[1], int(parts[2])
                    reply = parts[3] if len(parts) == 6 else None
                    hdr_len, total = int(parts[-2]), int(parts[-1])
                need = end + 2 + total + 2
                if len(self._buf) < need:
                    return
                body = self._buf[end + 2:end + 2 + total]
                self._buf = self._buf[need:]
                headers = body[:hdr_len] if op == b"HMSG" else None
                self._dispatch(Msg(subject, sid, reply, headers, body[hdr_len:]))
                continue
            self._buf = self._buf[end + 2:]
            if op == b"PING":
                self._send(b"PONG\r\n")
            elif op == b"PONG":
                with self._pongs:
                    self._pong_count += 1
                    self._pongs.notify_all()
            elif op == b"-ERR":
                self.errors.append(line.decode("utf-8", "replace"))
            elif op == b"INFO":
                self.info = json.loads(line[5:])
            # +OK: ignored (verbose is off anyway)

    def _dispatch(self, msg):
        sub = self._subs.get(msg.sid)
        if sub is None:
            return
        if sub.callback is not None:
            try:
                sub.callback(msg)
            except Exception as e:  # noqa: BLE001 - keep the reader alive
                self.errors.append("callback failed: %r" % e)
        else:
            sub.queue.put(msg)

    def flush(self, timeout=IO_TIMEOUT):
        """PING and wait for its PONG: the server has processed everything
        sent before. False on timeout or a closed connection."""
        with self._pongs:
            target = self._pong_count + 1
        try:
            self._send(b"PING\r\n")
        except OSError:
            return False
        deadline = time.monotonic() + timeout
        with self._pongs:
            while self._pong_count < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._pongs.wait(left)
        return True

    def sub(self, subject, callback=None, queue_group=None):
        sid = self._next_sid
        self._next_sid += 1
        s = Subscription(self, sid, subject, callback)
        self._subs[sid] = s
        q = (" " + queue_group) if queue_group else ""
        self._send(("SUB %s%s %d\r\n" % (subject, q, sid)).encode())
        return s

    def unsub(self, sid):
        self._send(("UNSUB %d\r\n" % sid).encode())
        self._subs.pop(sid, None)

    def pub(self, subject, payload, reply=None):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        r = (" " + reply) if reply else ""
        self._send(("PUB %s%s %d\r\n" % (subject, r, len(payload))).encode() + payload + b"\r\n")

    def publish(self, subject, payload, timeout=IO_TIMEOUT):
        """pub + flush: the server has the message when this returns."""
        self.pub(subject, payload)
        if not self.flush(timeout):
            raise RuntimeError("publish to %s not confirmed (errors %r)" % (subject, self.errors))

    def close(self):
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Service:
    """A service on raw NATS: subscribes to `subject` and answers every
    request with handler(envelope, msg). The handler returns a dict (sent as
    JSON), str/bytes (sent raw) or None (no answer). Every message received is
    kept in `received` as (envelope or None, Msg)."""

    def __init__(self, url, subject, handler=None, name="wsgw-it-service"):
        self.subject = subject
        self.handler = handler
        self.received = []
        self._cond = threading.Condition()
        self.client = NatsClient(url, name=name)
        self.client.sub(subject, callback=self._on_msg)
        if not self.client.flush():
            raise RuntimeError("service subscription to %s not confirmed" % subject)

    def _on_msg(self, msg):
        try:
            env = msg.json()
        except ValueError:
            env = None
        with self._cond:
            self.received.append((env, msg))
            self._cond.notify_all()
        if self.handler is None or not msg.reply:
            return
        answer = self.handler(env, msg)
        if answer is not None:
            self.client.pub(msg.reply, answer)

    def wait_received(self, n=1, timeout=IO_TIMEOUT):
        """The first n received entries once there are n, else None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return list(self.received[:n])

    def close(self):
        self.client.close()


# --------------------------------------------------------------------------
# The gateway


def routes_toml(routes):
    """[[routes]] tables from dicts (command, subject, mode, timeout_ms, ack)."""
    out = []
    for r in routes:
        out.append("[[routes]]")
        for key in ("command", "subject", "mode", "timeout_ms", "ack"):
            if key not in r:
                continue
            v = r[key]
            if isinstance(v, bool):
                out.append("%s = %s" % (key, "true" if v else "false"))
            elif isinstance(v, int):
                out.append("%s = %d" % (key, v))
            else:
                out.append("%s = %s" % (key, json.dumps(v)))
        out.append("")
    return "\n".join(out)


class Gateway:
    """The wsgw binary as a child process. Every stderr line is kept (and
    drained continuously by a thread, so the gateway never blocks on a full
    pipe)."""

    def __init__(self, workdir, gateway_id, nats_url, routes=(), extra_args=(), workers=2):
        binary = os.environ.get("WSGW_BINARY")
        if not binary:
            raise RuntimeError("set WSGW_BINARY to the wsgw binary")
        if not os.access(binary, os.X_OK):
            raise RuntimeError("WSGW_BINARY=%s is not executable" % binary)
        self.id = gateway_id
        self.workers = workers
        self.config_path = os.path.join(workdir, "wsgw-%s.toml" % gateway_id)
        with open(self.config_path, "w") as f:
            f.write("# written by nats_helpers.py\n" + routes_toml(routes))
        self.args = [binary, "--config", self.config_path,
                     "--server.address=" + HOST, "--server.port=0",
                     "--gateway.workers=%d" % workers, "--gateway.id=" + gateway_id,
                     "--auth.mode=none", "--nats.url=" + nats_url, *extra_args]
        self.lines = []
        self.port = None
        self.proc = None
        self._cond = threading.Condition()
        self._eof = False

    @property
    def nats_name(self):
        return "wsgw-" + self.id

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        _track(self.proc)
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.wait_for(lambda o: o.get("event") == "listening", timeout)
        if line is None:
            self.kill()
            raise RuntimeError("gateway %s did not start:\n%s" % (self.id, self.tail()))
        self.port = int(line["port"])
        return self

    def _drain(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self.proc.stderr.close()

    def events(self):
        """Every JSON log line so far, in order."""
        out = []
        with self._cond:
            lines = list(self.lines)
        for text in lines:
            try:
                obj = json.loads(text)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_for(self, pred, timeout, start=0):
        """The first JSON log line from index `start` on with pred(line), or
        None after timeout."""
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for text in self.lines[seen:]:
                    try:
                        obj = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and pred(obj):
                        return obj
                seen = max(seen, len(self.lines))
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    return None
                self._cond.wait(left)

    def line_count(self):
        with self._cond:
            return len(self.lines)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=8.0):
        """SIGTERM, then SIGKILL after grace; returns the exit code."""
        return _kill_proc(self.proc, signal.SIGTERM, timeout=grace)

    def kill(self):
        return _kill_proc(self.proc, signal.SIGKILL)

    def tail(self, n=40):
        with self._cond:
            return "\n".join(self.lines[-n:])

    def ws_url(self, query=""):
        return "ws://%s:%d/ws%s" % (HOST, self.port, query)

    def admin_port(self, timeout=IO_TIMEOUT):
        """The admin listener's port, from the `admin_listening` log line
        (logged once the gateway started; --admin.port=0 lets the OS pick)."""
        if getattr(self, "_admin_port", None) is None:
            line = self.wait_for(lambda o: o.get("event") == "admin_listening" and "port" in o,
                                 timeout)
            if line is None:
                raise RuntimeError("gateway %s logged no admin_listening:\n%s"
                                   % (self.id, self.tail()))
            self._admin_port = int(line["port"])
        return self._admin_port

    def admin_url(self, path):
        return "http://%s:%d%s" % (HOST, self.admin_port(), path)

    # What a gateway subscribes to at start (§6.5), users and groups aside.
    def fixed_subjects(self, prefix="wsgw"):
        subs = [prefix + ".conn." + self.id + ".*", prefix + ".all", prefix + ".ctl.*"]
        subs += ["_INBOX.%s.%s.%d.*" % (prefix, self.id, w) for w in range(self.workers)]
        return sorted(subs)


def find_gateway_node(servers, gw):
    """(node, subjects) of the node among `servers` holding gw's NATS
    connection, or (None, None)."""
    for s in servers:
        if not s.alive():
            continue
        subjects = s.conn_subjects(gw.nats_name)
        if subjects is not None:
            return s, subjects
    return None, None


def wait_gateway_subjects(servers, gw, pred, timeout=SUB_TIMEOUT):
    """Polls the gateway's subscription list on `servers` until pred(list)
    holds. Returns (ok, last list seen)."""
    last = [None]

    def check():
        _, subjects = find_gateway_node(servers, gw)
        last[0] = subjects
        return subjects is not None and pred(subjects)

    ok = wait_until(check, timeout, 0.05)
    return bool(ok), last[0]


# --------------------------------------------------------------------------
# WebSocket client (websockets 10.4, asyncio, driven from a background loop)


class _Loop:
    _lock = threading.Lock()
    _loop = None

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, daemon=True,
                                 name="ws-loop").start()
                cls._loop = loop
            return cls._loop


def _run(coro, timeout):
    fut = asyncio.run_coroutine_threadsafe(coro, _Loop.get())
    try:
        return fut.result(timeout)
    except BaseException:
        fut.cancel()
        raise


class WsClient:
    """One WebSocket connection. Messages are collected by a reader task into
    a queue; the close code and reason are kept when the connection ends."""

    def __init__(self, ws, welcome):
        self._ws = ws
        self.welcome = welcome
        self.messages = queue.Queue()
        self.closed = threading.Event()
        self.close_code = None
        self.close_reason = None
        self._reader = asyncio.run_coroutine_threadsafe(self._read(), _Loop.get())

    @property
    def conn_id(self):
        return self.welcome["data"]["connId"]

    @classmethod
    def connect(cls, gw, query="?user=alice", timeout=IO_TIMEOUT):
        """Opens ws://127.0.0.1:PORT/ws<query>, reads WELCOME."""
        url = gw.ws_url(query)

        async def open_():
            ws = await websockets.connect(url, open_timeout=timeout, close_timeout=2,
                                          ping_interval=None, max_size=2 ** 20)
            try:
                first = await asyncio.wait_for(ws.recv(), timeout)
            except BaseException:
                await ws.close()
                raise
            return ws, first

        ws, first = _run(open_(), timeout + 2)
        welcome = json.loads(first)
        if welcome.get("command") != "WELCOME":
            _run(ws.close(), 5)
            raise AssertionError("first message is not WELCOME: %r" % welcome)
        return cls(ws, welcome)

    async def _read(self):
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    self.messages.put({"__binary__": raw})
                else:
                    try:
                        self.messages.put(json.loads(raw))
                    except ValueError:
                        self.messages.put({"__text__": raw})
        except wsexc.ConnectionClosed as exc:
            rcvd = getattr(exc, "rcvd", None)
            if rcvd is not None:
                self.close_code, self.close_reason = rcvd.code, rcvd.reason
        except Exception:  # noqa: BLE001 - recorded as a close without code
            pass
        finally:
            if self.close_code is None:
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason
            self.closed.set()

    def send(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        _run(self._ws.send(text), IO_TIMEOUT)

    def recv(self, timeout=IO_TIMEOUT):
        """The next message, or None after timeout."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def recv_until(self, pred, timeout=IO_TIMEOUT, limit=1000):
        """Reads until a message with pred(m); returns (match or None, the
        messages read before it)."""
        skipped = []
        deadline = time.monotonic() + timeout
        for _ in range(limit):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            m = self.recv(left)
            if m is None:
                break
            if pred(m):
                return m, skipped
            skipped.append(m)
        return None, skipped

    def drain(self, quiet=0.3, limit=1000):
        """Reads until nothing arrives for `quiet` seconds; returns what came."""
        out = []
        for _ in range(limit):
            m = self.recv(quiet)
            if m is None:
                break
            out.append(m)
        return out

    def request(self, command, data=None, trace_id=None, timeout=IO_TIMEOUT, **extra):
        """Sends a command and returns the first message carrying the same
        command (and traceId when given), or None after timeout."""
        msg = {"command": command, **extra}
        if trace_id is not None:
            msg["traceId"] = trace_id
        if data is not None:
            msg["data"] = data
        self.send(msg)
        m, _ = self.recv_until(
            lambda r: r.get("command") == command and (trace_id is None or r.get("traceId") == trace_id),
            timeout)
        return m

    def health(self, timeout=IO_TIMEOUT):
        r = self.request("HEALTH", trace_id="h-%d" % time.monotonic_ns(), timeout=timeout)
        return r is not None and r.get("code") == 0

    def wait_closed(self, timeout=IO_TIMEOUT):
        """(code, reason) once the connection ended, or None after timeout.
        Messages that arrived before the close stay in the queue."""
        if not self.closed.wait(timeout):
            return None
        return self.close_code, self.close_reason

    def close(self):
        if self.closed.is_set():
            return
        try:
            _run(self._ws.close(), 5)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.closed.wait(3)


# --------------------------------------------------------------------------
# Per-test resources


class Resources:
    """Everything one test started; close() tears it all down in reverse
    order, each step guarded so one failure does not leak the rest."""

    def __init__(self, prefix="wsgw-natsit-"):
        self.workdir = tempfile.mkdtemp(prefix=prefix)
        self._items = []

    def add(self, item):
        self._items.append(item)
        return item

    def nats_server(self, name="n", **kw):
        s = NatsServer(self.workdir, name, **kw)
        self.add(s)  # registered before start: killed even if start fails half way
        return s.start()

    def nats_cluster(self):
        return NatsCluster(self.workdir, register=self.add).wait_formed()

    def gateway(self, gateway_id, nats_url, **kw):
        g = Gateway(self.workdir, gateway_id, nats_url, **kw)
        self.add(g)
        return g.start()

    def ws(self, gw, query="?user=alice"):
        return self.add(WsClient.connect(gw, query))

    def nats_client(self, url, name="wsgw-it-client"):
        return self.add(NatsClient(url, name=name))

    def service(self, url, subject, handler=None):
        return self.add(Service(url, subject, handler))

    def close(self):
        for item in reversed(self._items):
            try:
                if isinstance(item, NatsServer):
                    item.kill()
                elif isinstance(item, Gateway):
                    if item.proc is not None and item.proc.poll() is None:
                        item.stop(grace=5.0)
                else:
                    item.close()
            except Exception:  # noqa: BLE001 - keep tearing down
                pass
        self._items.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def dump_on_failure(resources):
    """Log tails of every gateway and nats-server, for failure messages."""
    parts = []
    for item in resources._items:
        if isinstance(item, Gateway):
            parts.append("--- gateway %s log tail ---\n%s" % (item.id, item.tail(25)))
        elif isinstance(item, NatsServer):
            parts.append("--- nats-server %s log tail ---\n%s" % (item.name, item.log_tail(10)))
    return "\n".join(parts)


# --------------------------------------------------------------------------
# Test base

_push_ids = itertools.count(1)


def push_payload(command="NOTIFY", **data):
    """A downstream push with a unique traceId; returns (payload, traceId)."""
    tid = "p-%d-%d" % (os.getpid(), next(_push_ids))
    return {"command": command, "traceId": tid, "data": data}, tid


class NatsTestCase(unittest.TestCase):
    """setUp gives self.res (torn down after the test, failure or not); on
    failure the log tails of every gateway and nats-server go to stderr."""

    def setUp(self):
        self.res = Resources()
        self.addCleanup(self.res.close)
        self.addCleanup(self._dump_if_failed)

    def _dump_if_failed(self):
        # The outcome's success flag is reset for each cleanup; the result
        # object already holds this test's failure or error.
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is not None and any(
            t is self for t, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])))
        if failed:
            sys.stderr.write("\n" + dump_on_failure(self.res) + "\n")

    # Subscriptions on the server -------------------------------------------
    def wait_gateway_ready(self, servers, gw, timeout=SUB_TIMEOUT):
        """Until the gateway's fixed subscriptions (§6.5) are on the server."""
        fixed = gw.fixed_subjects()
        ok, seen = wait_gateway_subjects(servers, gw, lambda s: all(f in s for f in fixed),
                                         timeout)
        self.assertTrue(ok, "gateway %s: fixed subscriptions %r not all visible within %.0f s; "
                            "seen %r" % (gw.id, fixed, timeout, seen))

    def wait_subject(self, servers, gw, subject, present=True, timeout=SUB_TIMEOUT):
        ok, seen = wait_gateway_subjects(
            servers, gw, lambda s: (subject in s) == present, timeout)
        self.assertTrue(ok, "gateway %s: subscription %s %s within %.0f s; its subscriptions: %r"
                        % (gw.id, subject, "never appeared" if present else "never went away",
                           timeout, seen))

    # Messages on WebSocket clients ----------------------------------------
    def expect_push(self, client, trace_id, timeout=IO_TIMEOUT, label=""):
        """The push with trace_id arrives on client, with nothing else before."""
        m, skipped = client.recv_until(lambda r: r.get("traceId") == trace_id, timeout)
        self.assertIsNotNone(m, "%s (%s): push %s did not arrive within %.1f s; got instead %r"
                             % (label, client.conn_id, trace_id, timeout, skipped))
        self.assertEqual([], skipped, "%s: unexpected messages before push %s" % (label, trace_id))
        return m

    def expect_silence(self, clients, window=SILENCE, label=""):
        """Nothing arrives on any of `clients` within window seconds."""
        deadline = time.monotonic() + window
        got = {}
        for c in clients:
            left = max(0.0, deadline - time.monotonic())
            msgs = []
            m = c.recv(left)
            while m is not None:
                msgs.append(m)
                m = c.recv(0.05)
            if msgs:
                got[c.conn_id] = msgs
        self.assertEqual({}, got, "%s: expected no messages, got %r" % (label, got))


# --------------------------------------------------------------------------
# Admin HTTP API and the Prometheus text format (docs/OPERATIONS.md §3)


class HttpResult:
    """An HTTP answer: status, headers (lower-case names), body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "HttpResult(%d, %r)" % (self.status, self.body[:300])


def http_call(method, url, body=None, headers=None, timeout=IO_TIMEOUT):
    """One HTTP request (never through a proxy). Error statuses are returned
    like any other, not raised. `body`: bytes, str, or a dict/list (sent as
    JSON)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            return HttpResult(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                              resp.read())
    except urllib.error.HTTPError as e:
        try:
            data = e.read()
        finally:
            e.close()
        return HttpResult(e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, data)


_PROM_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PROM_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PROM_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class PromText:
    """A parsed exposition: `samples` [(name, labels dict, value)], `helps`
    {family: text}, `types` {family: type}, `order` [family names in the
    order their HELP/TYPE appeared], `errors` [(line number, line, why)]."""

    def __init__(self):
        self.samples = []
        self.helps = {}
        self.types = {}
        self.order = []
        self.errors = []

    def family_of(self, name):
        """The family a sample name belongs to: a histogram's or summary's
        _bucket/_sum/_count samples belong to its base name."""
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                base = name[:-len(suffix)]
                if self.types.get(base) in ("histogram", "summary"):
                    return base
        return name

    def has_family(self, name):
        return name in self.types or any(self.family_of(s[0]) == name for s in self.samples)

    def get(self, name, default=None, **labels):
        """The value of the sample `name` whose labels are exactly `labels`."""
        for n, l, v in self.samples:
            if n == name and l == labels:
                return v
        return default

    def select(self, name, **labels):
        """[(labels, value)] of every sample `name` whose labels include `labels`."""
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == want for k, want in labels.items())]


def _prom_value(text):
    if text in ("+Inf", "Inf"):
        return float("inf")
    if text == "-Inf":
        return float("-inf")
    if text == "NaN":
        return float("nan")
    return float(text)  # ValueError for anything else


def _prom_labels(text, pos):
    """Parses `{a="x",b="y"}` from text[pos] == '{'; returns (dict, end)."""
    labels = {}
    i = pos + 1
    for _ in range(len(text) + 1):
        if i < len(text) and text[i] == "}":
            return labels, i + 1
        m = _PROM_LABEL.match(text, i)
        if not m:
            raise ValueError("bad label name at column %d" % i)
        name = m.group(0)
        i = m.end()
        if text[i:i + 2] != '="':
            raise ValueError("label %s: expected =\"" % name)
        i += 2
        value = []
        for _ in range(len(text) + 1):
            if i >= len(text):
                raise ValueError("label %s: unterminated value" % name)
            c = text[i]
            if c == "\\":
                nxt = text[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError("label %s: bad escape \\%s" % (name, nxt))
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ValueError("label %s given twice" % name)
        labels[name] = "".join(value)
        if i < len(text) and text[i] == ",":
            i += 1
        elif i < len(text) and text[i] == "}":
            continue
        else:
            raise ValueError("expected , or } after label %s" % name)
    raise ValueError("unterminated label set")


def parse_prometheus(text):
    """Parses the Prometheus text format (version 0.0.4): `# HELP`, `# TYPE`,
    other comments, blank lines and samples `name{labels} value [ts]`.
    Nothing raises: every malformed line goes to `errors`."""
    out = PromText()
    for lineno, line in enumerate(text.split("\n"), 1):
        if line == "" or line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not _PROM_NAME.fullmatch(parts[2]):
                    out.errors.append((lineno, line, "bad metric name in %s" % parts[1]))
                    continue
                name, rest = parts[2], (parts[3] if len(parts) > 3 else "")
                if parts[1] == "HELP":
                    if name in out.helps:
                        out.errors.append((lineno, line, "second HELP for %s" % name))
                    out.helps[name] = rest
                else:
                    if rest not in _PROM_TYPES:
                        out.errors.append((lineno, line, "unknown type %r" % rest))
                    if name in out.types:
                        out.errors.append((lineno, line, "second TYPE for %s" % name))
                    out.types[name] = rest
                if name not in out.order:
                    out.order.append(name)
            continue  # other comments
        m = _PROM_NAME.match(line)
        if not m:
            out.errors.append((lineno, line, "no metric name"))
            continue
        name, i = m.group(0), m.end()
        labels = {}
        try:
            if i < len(line) and line[i] == "{":
                labels, i = _prom_labels(line, i)
            if i >= len(line) or line[i] != " ":
                raise ValueError("expected one space before the value")
            fields = line[i + 1:].split(" ")
            if len(fields) not in (1, 2) or fields[0] == "":
                raise ValueError("expected `value [timestamp]`")
            value = _prom_value(fields[0])
            if len(fields) == 2:
                int(fields[1])
        except ValueError as e:
            out.errors.append((lineno, line, str(e)))
            continue
        out.samples.append((name, labels, value))
    return out


def read_rss_kib(pid, field="VmRSS"):
    """A memory field of /proc/<pid>/status in KiB (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
