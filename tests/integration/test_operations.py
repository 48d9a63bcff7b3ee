#!/usr/bin/python3
"""Operating the gateway (docs/OPERATIONS.md): /metrics, /healthz and /readyz,
the HTTP push API, draining on SIGTERM and slow consumers.

Run with Debian's interpreter (python3-websockets 10.4):
  WSGW_BINARY=/path/to/wsgw /usr/bin/python3 tests/integration/test_operations.py -v

Every test starts its own nats-server and gateway(s) on 127.0.0.1 with
OS-picked ports (the admin port is read back from the `admin_listening` log
line), so the tests are independent and may run in parallel. Every wait is
bounded in time and every loop in count; the tests check behaviour, never
speed: a bound on a wait only keeps a broken gateway from hanging the run.

A metric that is not exported at all fails its test with a message starting
"MISSING METRIC", so such failures are told apart from wrong values.
"""

import base64
import json
import math
import os
import signal
import socket
import struct
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nats_helpers import (  # noqa: E402
    HOST, IO_TIMEOUT, NatsTestCase, http_call, parse_prometheus, push_payload,
    read_rss_kib, wait_until)

API_KEY = "ops-it-key-5f1c0a9e"
ECHO_SUBJECT = "svc.ops.echo"
ECHO_ROUTE = {"command": "ECHO", "subject": ECHO_SUBJECT, "mode": "request", "timeout_ms": 4000}
NOSVC_ROUTE = {"command": "NOSVC", "subject": "svc.ops.nobody", "mode": "request",
               "timeout_ms": 4000}
VERBOSE = bool(os.environ.get("WSGW_OPS_VERBOSE"))  # print what was measured
METRIC_TIMEOUT = 5.0      # a counter catching up with what the test saw
NATS_DOWN_TIMEOUT = 15.0  # NATS loss or return seen by /readyz


def note(text):
    if VERBOSE:
        sys.stderr.write("  [ops] %s\n" % text)


def echo_handler(env, _msg):
    return {"code": 0, "message": "success", "data": (env or {}).get("data")}


# --------------------------------------------------------------------------
# Raw WebSocket client pieces: an upgrade written by hand, server frames read
# by hand. Used where a real client library would read (slow consumer), or
# where the handshake is meant to fail.


class RawHttp:
    """The answer to a hand-written upgrade request."""

    def __init__(self, sock, status, headers, rest):
        self.sock = sock
        self.status = status
        self.headers = headers
        self.rest = rest  # bytes read after the header block

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_upgrade(port, query="", upgrade=True, rcvbuf=None, timeout=IO_TIMEOUT):
    """Opens a TCP connection, writes `GET /ws<query>` (a WebSocket upgrade
    unless upgrade=False) and reads the response's header block. For a
    refusal, the body (Content-Length) is read into `rest` too."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((HOST, port))
        lines = ["GET /ws%s HTTP/1.1" % query, "Host: %s:%d" % (HOST, port)]
        if upgrade:
            lines += ["Upgrade: websocket", "Connection: Upgrade",
                      "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
                      "Sec-WebSocket-Version: 13"]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            if b"\r\n\r\n" in buf or len(buf) > 65536 or time.monotonic() > deadline:
                break
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        if b"\r\n\r\n" not in buf:
            raise AssertionError("no complete HTTP response header: %r" % buf[:300])
        head, rest = buf.split(b"\r\n\r\n", 1)
        head_lines = head.decode("latin-1").split("\r\n")
        status = int(head_lines[0].split(" ")[1])
        headers = {}
        for h in head_lines[1:]:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 101:
            want = int(headers.get("content-length", "0"))
            for _ in range(100):
                if len(rest) >= want or time.monotonic() > deadline:
                    break
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        return RawHttp(s, status, headers, rest)
    except BaseException:
        s.close()
        raise


def read_server_frame(sock, buf, timeout=IO_TIMEOUT):
    """One unmasked server frame from sock (after the bytes in buf):
    (opcode, payload, leftover bytes)."""
    deadline = time.monotonic() + timeout

    def need(n, data):
        for _ in range(10000):
            if len(data) >= n:
                return data
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timeout reading a frame")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed while reading a frame")
            data += chunk
        raise AssertionError("frame too long")

    buf = need(2, buf)
    opcode = buf[0] & 0x0F
    length = buf[1] & 0x7F
    off = 2
    if length == 126:
        buf = need(4, buf)
        length = struct.unpack("!H", buf[2:4])[0]
        off = 4
    elif length == 127:
        buf = need(10, buf)
        length = struct.unpack("!Q", buf[2:10])[0]
        off = 10
    buf = need(off + length, buf)
    return opcode, buf[off:off + length], buf[off + length:]


def raw_ws_open(gw, query, rcvbuf=None):
    """A completed upgrade on a raw socket and its WELCOME (parsed):
    (RawHttp, welcome)."""
    r = raw_upgrade(gw.port, query, rcvbuf=rcvbuf)
    if r.status != 101:
        r.close()
        raise AssertionError("upgrade %s refused: %d %r" % (query, r.status, r.rest))
    opcode, payload, r.rest = read_server_frame(r.sock, r.rest)
    welcome = json.loads(payload.decode("utf-8"))
    if opcode != 1 or welcome.get("command") != "WELCOME":
        r.close()
        raise AssertionError("first frame is not WELCOME: %r" % payload[:200])
    return r, welcome


class Collector:
    """Reads every message of a WsClient on its own thread with its arrival
    time (time.monotonic()), until the connection ends or `timeout`."""

    def __init__(self, client, timeout):
        self.client = client
        self.got = []  # (time, message)
        self._deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        for _ in range(100000):
            if time.monotonic() > self._deadline:
                return
            m = self.client.recv(0.02)
            if m is not None:
                self.got.append((time.monotonic(), m))
            elif self.client.closed.is_set():
                return

    def join(self, timeout):
        self._thread.join(timeout)
        return not self._thread.is_alive()


# --------------------------------------------------------------------------
# Base


class OpsCase(NatsTestCase):
    """Helpers for gateways with the admin listener on an OS-picked port."""

    def start_gateway(self, gid, nats, routes=(), extra=(), api_key=None):
        args = ["--admin.address=" + HOST, "--admin.port=0"]
        if api_key is not None:
            args.append("--admin.api_key=" + api_key)
        gw = self.res.gateway(gid, nats.url, routes=routes, extra_args=args + list(extra))
        gw.admin_port()
        self.wait_gateway_ready([nats], gw)
        return gw

    # /metrics ---------------------------------------------------------------
    def scrape(self, gw):
        r = http_call("GET", gw.admin_url("/metrics"))
        self.assertEqual(200, r.status, "GET /metrics: %r" % r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"),
                        "content-type of /metrics: %r" % r.headers.get("content-type"))
        return parse_prometheus(r.body.decode("utf-8"))

    @staticmethod
    def lookup(prom, name, labels=None):
        """The sample's value, or None when its family is not exported. A
        labelled sample missing from a family that is exported counts as 0
        (a label value appears with its first event)."""
        labels = labels or {}
        v = prom.get(name, **labels)
        if v is not None:
            return v
        if labels and prom.has_family(prom.family_of(name)):
            return 0.0
        return None

    def value(self, prom, name, labels=None, missing_ok=False):
        """lookup(), failing with MISSING METRIC when the family is not
        exported. missing_ok: a labelled counter family may be absent until
        its first event, so a baseline read before any event counts it 0
        (the later wait_metric still requires it to appear)."""
        labels = labels or {}
        v = self.lookup(prom, name, labels)
        if v is not None:
            return v
        if missing_ok and labels:
            return 0.0
        self.fail("MISSING METRIC %s%s: not exported by /metrics (families: %s)"
                  % (name, self._labels_text(labels), ", ".join(sorted(prom.types))))

    @staticmethod
    def _labels_text(labels):
        if not labels:
            return ""
        return "{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"

    def metric(self, gw, name, **labels):
        return self.value(self.scrape(gw), name, labels)

    def wait_metric(self, gw, name, expected, labels=None, timeout=METRIC_TIMEOUT, settle=0.3,
                    msg=""):
        """Until name{labels} == expected; then, after `settle` seconds, it
        must still be expected (an exact count, not a passing value)."""
        labels = labels or {}
        last = [None, None]

        def check():
            last[1] = self.scrape(gw)
            last[0] = self.lookup(last[1], name, labels)
            return last[0] == expected

        ok = wait_until(check, timeout, 0.1)
        if not ok and last[0] is None:
            self.value(last[1], name, labels)  # fails with MISSING METRIC
        self.assertTrue(ok, "%s%s: expected %r within %.0f s, last seen %r. %s"
                        % (name, self._labels_text(labels), expected, timeout, last[0], msg))
        if settle:
            time.sleep(settle)
            now = self.value(self.scrape(gw), name, labels)
            self.assertEqual(expected, now, "%s%s went on to %r after reaching %r. %s"
                             % (name, self._labels_text(labels), now, expected, msg))

    def wait_metric_at_least(self, gw, name, minimum, labels=None, timeout=METRIC_TIMEOUT):
        labels = labels or {}
        last = [None, None]

        def check():
            last[1] = self.scrape(gw)
            last[0] = self.lookup(last[1], name, labels)
            return last[0] is not None and last[0] >= minimum

        ok = wait_until(check, timeout, 0.1)
        if not ok and last[0] is None:
            self.value(last[1], name, labels)  # fails with MISSING METRIC
        self.assertTrue(ok, "%s%s: expected >= %r within %.0f s, last seen %r"
                        % (name, self._labels_text(labels), minimum, timeout, last[0]))
        return last[0]

    def assert_well_formed(self, prom):
        """Every line parses; every family has # HELP and # TYPE, before its
        samples; counters end in _total and are finite and >= 0; no sample
        is given twice; histograms are complete and cumulative."""
        self.assertEqual([], prom.errors, "malformed /metrics lines")
        seen = set()
        for name, labels, value in prom.samples:
            fam = prom.family_of(name)
            self.assertIn(fam, prom.helps, "no # HELP for %s" % name)
            self.assertIn(fam, prom.types, "no # TYPE for %s" % name)
            self.assertTrue(name.startswith("wsgw_"), "metric outside wsgw_: %s" % name)
            key = (name, tuple(sorted(labels.items())))
            self.assertNotIn(key, seen, "sample given twice: %s%s" % (name, labels))
            seen.add(key)
            t = prom.types[fam]
            if t == "counter":
                self.assertTrue(name.endswith("_total"), "counter %s does not end in _total" % name)
                self.assertTrue(math.isfinite(value) and value >= 0,
                                "counter %s%s = %r" % (name, labels, value))
            elif t == "gauge":
                self.assertFalse(math.isnan(value), "gauge %s is NaN" % name)
        for fam, t in prom.types.items():
            self.assertIn(fam, prom.helps, "# TYPE without # HELP: %s" % fam)
            if t != "histogram":
                continue
            self.assertFalse(fam.endswith("_total"), "histogram named like a counter: %s" % fam)
            self.check_histogram(prom, fam)

    def check_histogram(self, prom, fam):
        """_bucket cumulative in le order, ending at le="+Inf" == _count, and
        _sum present, for every label set of the histogram."""
        groups = {}
        for labels, v in prom.select(fam + "_bucket"):
            self.assertIn("le", labels, "%s_bucket without le" % fam)
            rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            groups.setdefault(rest, []).append((float(labels["le"].replace("Inf", "inf")), v))
        self.assertTrue(groups, "histogram %s has no _bucket samples" % fam)
        for rest, buckets in groups.items():
            buckets.sort()
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values), "%s%r buckets not cumulative: %r"
                             % (fam, rest, buckets))
            self.assertEqual(float("inf"), buckets[-1][0], "%s%r has no +Inf bucket" % (fam, rest))
            labels = dict(rest)
            count = prom.get(fam + "_count", **labels)
            total = prom.get(fam + "_sum", **labels)
            self.assertIsNotNone(count, "%s_count%r missing" % (fam, rest))
            self.assertIsNotNone(total, "%s_sum%r missing" % (fam, rest))
            self.assertEqual(count, buckets[-1][1], "%s: _count != +Inf bucket" % fam)
            self.assertTrue(total >= 0, "%s_sum < 0" % fam)

    # Admin API --------------------------------------------------------------
    def api(self, gw, path, body, key=API_KEY, method="POST", header="bearer"):
        headers = {"Content-Type": "application/json"}
        if key is not None:
            if header == "bearer":
                headers["Authorization"] = "Bearer " + key
            else:
                headers["X-Api-Key"] = key
        return http_call(method, gw.admin_url(path), body, headers)

    def api_ok(self, gw, path, body, **kw):
        r = self.api(gw, path, body, **kw)
        self.assertEqual(202, r.status, "POST %s %r: %r" % (path, body, r))
        self.assertEqual(0, r.json().get("code"), "POST %s: %r" % (path, r))
        return r

    def ready(self, gw):
        """(status, body) of /readyz; (None, error) when it does not answer."""
        try:
            r = http_call("GET", gw.admin_url("/readyz"), timeout=2.0)
        except OSError as e:
            return None, str(e)
        try:
            return r.status, r.json()
        except ValueError:
            return r.status, r.body

    def wait_ready_status(self, gw, status, timeout, label):
        last = [None]

        def check():
            last[0] = self.ready(gw)
            return last[0][0] == status

        ok = wait_until(check, timeout, 0.1)
        self.assertTrue(ok, "%s: /readyz not %d within %.0f s; last %r"
                        % (label, status, timeout, last[0]))
        return last[0][1]

    def healthz(self, gw):
        r = http_call("GET", gw.admin_url("/healthz"), timeout=2.0)
        return r.status, r.json()

    def wait_exit(self, gw, timeout):
        try:
            return gw.proc.wait(timeout)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
            return None


# --------------------------------------------------------------------------
# 1. /metrics


class MetricsTest(OpsCase):

    def setUp(self):
        super().setUp()
        self.nats = self.res.nats_server("n")
        self.pub = self.res.nats_client(self.nats.url, name="publisher")

    def gateway(self, gid="gwm", routes=(ECHO_ROUTE, NOSVC_ROUTE), extra=()):
        return self.start_gateway(gid, self.nats, routes=routes, extra=extra)

    def test_core_metrics_move_with_connections_commands_and_pushes(self):
        gw = self.gateway()
        self.res.service(self.nats.url, ECHO_SUBJECT, echo_handler)
        prom = self.scrape(gw)
        self.assert_well_formed(prom)
        self.assertEqual(0, self.value(prom, "wsgw_connections"))
        self.assertEqual(0, self.value(prom, "wsgw_users"))
        self.assertEqual(1, self.value(prom, "wsgw_nats_connected"))
        self.assertEqual(1, self.value(prom, "wsgw_ready"))

        # 3 connections of 2 users.
        a1 = self.res.ws(gw, "?user=alice")
        a2 = self.res.ws(gw, "?user=alice")
        b1 = self.res.ws(gw, "?user=bob")
        self.wait_metric(gw, "wsgw_connections", 3)
        self.wait_metric(gw, "wsgw_users", 2)
        self.assert_well_formed(self.scrape(gw))

        # One closed: 2 connections, still 2 users.
        a2.close()
        self.wait_metric(gw, "wsgw_connections", 2)
        self.wait_metric(gw, "wsgw_users", 2)

        # N request commands answered by the service: ok and request_sent +N.
        base = self.scrape(gw)
        ok0 = self.value(base, "wsgw_upstream_total", {"outcome": "ok"})
        sent0 = self.value(base, "wsgw_upstream_total", {"outcome": "request_sent"})
        nr0 = self.value(base, "wsgw_upstream_total", {"outcome": "no_responders"})
        n = 7
        for i in range(n):
            r = a1.request("ECHO", {"i": i}, trace_id="echo-%d" % i)
            self.assertIsNotNone(r, "ECHO %d: no reply" % i)
            self.assertEqual((0, {"i": i}), (r["code"], r["data"]), "ECHO %d: %r" % (i, r))
        self.wait_metric(gw, "wsgw_upstream_total", ok0 + n, {"outcome": "ok"})
        self.wait_metric(gw, "wsgw_upstream_total", sent0 + n, {"outcome": "request_sent"})

        # A request nobody serves: 503, counted as no_responders; ok unchanged.
        r = b1.request("NOSVC", {}, trace_id="nosvc-1")
        self.assertIsNotNone(r, "NOSVC: no reply")
        self.assertEqual(503, r["code"], "NOSVC: %r" % r)
        self.wait_metric(gw, "wsgw_upstream_total", nr0 + 1, {"outcome": "no_responders"})
        self.assertEqual(ok0 + n, self.metric(gw, "wsgw_upstream_total", outcome="ok"))

        # Pushes: 4 to alice (1 connection), then 1 to everyone (2 connections).
        self.wait_subject([self.nats], gw, "wsgw.user.alice")
        base = self.scrape(gw)
        p0 = self.value(base, "wsgw_pushes_total")
        d0 = self.value(base, "wsgw_push_deliveries_total")
        for i in range(4):
            payload, tid = push_payload(i=i)
            self.pub.publish("wsgw.user.alice", payload)
            self.expect_push(a1, tid, label="alice push %d" % i)
        self.wait_metric(gw, "wsgw_pushes_total", p0 + 4)
        self.wait_metric(gw, "wsgw_push_deliveries_total", d0 + 4)
        payload, tid = push_payload(to="all")
        self.pub.publish("wsgw.all", payload)
        self.expect_push(a1, tid, label="broadcast on alice")
        self.expect_push(b1, tid, label="broadcast on bob")
        self.wait_metric(gw, "wsgw_pushes_total", p0 + 5)
        self.wait_metric(gw, "wsgw_push_deliveries_total", d0 + 6)
        self.expect_silence([a1, b1], label="after the pushes")
        self.assert_well_formed(self.scrape(gw))

    def test_handshakes_and_handshake_failures_by_reason(self):
        gw = self.gateway(extra=["--server.max_connections=2"])
        base = self.scrape(gw)
        h0 = self.value(base, "wsgw_handshakes_total")
        fail = "wsgw_handshake_failures_total"
        f0 = {r: self.value(base, fail, {"reason": r}, missing_ok=True)
              for r in ("no_user", "full", "bad_upgrade")}

        self.res.ws(gw, "?user=alice")
        self.wait_metric(gw, "wsgw_handshakes_total", h0 + 1)

        # auth.mode none without a user: 401, reason no_user.
        r = raw_upgrade(gw.port, "")
        r.close()
        self.assertEqual(401, r.status, "upgrade without user: %r" % r.rest)
        self.wait_metric(gw, fail, f0["no_user"] + 1, {"reason": "no_user"})

        # server.max_connections = 2 and 2 open: 503, reason full.
        self.res.ws(gw, "?user=bob")
        self.wait_metric(gw, "wsgw_handshakes_total", h0 + 2)
        r = raw_upgrade(gw.port, "?user=carol")
        r.close()
        self.assertEqual(503, r.status, "upgrade past max_connections: %r" % r.rest)
        self.wait_metric(gw, fail, f0["full"] + 1, {"reason": "full"})

        # A plain GET on the WebSocket path: not an upgrade, reason bad_upgrade.
        r = raw_upgrade(gw.port, "?user=dave", upgrade=False)
        r.close()
        self.assertIn(r.status, (400, 426), "plain GET: %r" % r.rest)
        self.wait_metric(gw, fail, f0["bad_upgrade"] + 1, {"reason": "bad_upgrade"})

        # Refusals are not accepted handshakes.
        self.assertEqual(h0 + 2, self.metric(gw, "wsgw_handshakes_total"))
        self.assert_well_formed(self.scrape(gw))

    def test_closes_by_close_code(self):
        gw = self.gateway()
        a = self.res.ws(gw, "?user=alice")
        b = self.res.ws(gw, "?user=bob")
        raw, _ = raw_ws_open(gw, "?user=carol")
        self.addCleanup(raw.close)
        self.wait_subject([self.nats], gw, "wsgw.user.alice")
        base = self.scrape(gw)
        c0 = {code: self.value(base, "wsgw_closes_total", {"code": code}, missing_ok=True)
              for code in ("4003", "1000", "1006")}

        # A kick: 4003.
        self.pub.publish("wsgw.ctl.kick", {"user": "alice", "reason": "ops test"})
        self.assertEqual((4003, "ops test"), a.wait_closed(IO_TIMEOUT))
        self.wait_metric(gw, "wsgw_closes_total", c0["4003"] + 1, {"code": "4003"})

        # A client's normal close: 1000.
        b.close()
        self.assertTrue(b.closed.is_set())
        self.wait_metric(gw, "wsgw_closes_total", c0["1000"] + 1, {"code": "1000"})

        # The TCP connection ends without a close frame: 1006.
        raw.sock.shutdown(socket.SHUT_RDWR)
        raw.close()
        self.wait_metric(gw, "wsgw_closes_total", c0["1006"] + 1, {"code": "1006"})
        self.wait_metric(gw, "wsgw_connections", 0)
        self.assertEqual(c0["4003"] + 1, self.metric(gw, "wsgw_closes_total", code="4003"))
        self.assert_well_formed(self.scrape(gw))

    def test_messages_in_and_out_by_command(self):
        gw = self.gateway()
        self.res.service(self.nats.url, ECHO_SUBJECT, echo_handler)
        base = self.scrape(gw)

        def io(prom, command):
            return (self.value(prom, "wsgw_messages_in_total", {"command": command}, True),
                    self.value(prom, "wsgw_messages_out_total", {"command": command}, True))

        w0, h0, e0, n0 = (io(base, c) for c in ("WELCOME", "HEALTH", "ECHO", "NOTIFY"))
        a = self.res.ws(gw, "?user=alice")
        b = self.res.ws(gw, "?user=bob")
        self.wait_metric(gw, "wsgw_messages_out_total", w0[1] + 2, {"command": "WELCOME"})

        hn, en = 5, 3
        for i in range(hn):
            self.assertTrue(a.health(), "HEALTH %d" % i)
        for i in range(en):
            r = b.request("ECHO", {"i": i}, trace_id="e-%d" % i)
            self.assertEqual(0, (r or {}).get("code"), "ECHO %d: %r" % (i, r))
        self.wait_metric(gw, "wsgw_messages_in_total", h0[0] + hn, {"command": "HEALTH"})
        self.wait_metric(gw, "wsgw_messages_out_total", h0[1] + hn, {"command": "HEALTH"})
        self.wait_metric(gw, "wsgw_messages_in_total", e0[0] + en, {"command": "ECHO"})
        self.wait_metric(gw, "wsgw_messages_out_total", e0[1] + en, {"command": "ECHO"})

        # A push to everyone: one NOTIFY out per connection, nothing in.
        payload, tid = push_payload(x=1)
        self.pub.publish("wsgw.all", payload)
        self.expect_push(a, tid, label="alice")
        self.expect_push(b, tid, label="bob")
        self.wait_metric(gw, "wsgw_messages_out_total", n0[1] + 2, {"command": "NOTIFY"})
        prom = self.scrape(gw)
        self.assertEqual(n0[0], self.value(prom, "wsgw_messages_in_total", {"command": "NOTIFY"}))
        self.assertEqual(w0[0], self.value(prom, "wsgw_messages_in_total", {"command": "WELCOME"}))
        self.assert_well_formed(prom)

    def test_connections_per_user_max(self):
        gw = self.gateway()
        self.res.ws(gw, "?user=alice")
        self.res.ws(gw, "?user=bob")
        self.wait_metric(gw, "wsgw_connections_per_user_max", 1)
        self.res.ws(gw, "?user=alice")
        self.res.ws(gw, "?user=alice")
        self.wait_metric(gw, "wsgw_connections_per_user_max", 3)
        prom = self.scrape(gw)
        self.assertEqual("gauge", prom.types.get("wsgw_connections_per_user_max"))
        self.assertEqual(4, self.value(prom, "wsgw_connections"))

    def test_send_queue_and_backlog_gauges(self):
        gw = self.gateway()
        a = self.res.ws(gw, "?user=alice")
        self.wait_subject([self.nats], gw, "wsgw.user.alice")
        for i in range(20):
            payload, tid = push_payload(i=i)
            self.pub.pub("wsgw.user.alice", payload)
        self.assertTrue(self.pub.flush())
        got = a.drain(quiet=0.5, limit=100)
        self.assertEqual(20, len(got), "pushes received: %r" % got)
        # At rest, with a client that reads: nothing queued, nothing waiting.
        for name in ("wsgw_send_queue_bytes", "wsgw_backlog_messages"):
            self.wait_metric(gw, name, 0)
            self.assertEqual("gauge", self.scrape(gw).types.get(name), "type of %s" % name)
        self.assert_well_formed(self.scrape(gw))

    def test_nats_handling_histogram(self):
        gw = self.gateway()
        a = self.res.ws(gw, "?user=alice")
        self.wait_subject([self.nats], gw, "wsgw.user.alice")
        name = "wsgw_nats_handling_seconds"
        prom = self.scrape(gw)
        if name not in prom.types:
            self.fail("MISSING METRIC %s: not exported by /metrics" % name)
        self.assertEqual("histogram", prom.types[name])
        self.check_histogram(prom, name)
        c0 = self.value(prom, name + "_count")
        s0 = self.value(prom, name + "_sum")
        for i in range(3):
            payload, tid = push_payload(i=i)
            self.pub.publish("wsgw.user.alice", payload)
            self.expect_push(a, tid, label="push %d" % i)
        c1 = self.wait_metric_at_least(gw, name + "_count", c0 + 3)
        prom = self.scrape(gw)
        self.check_histogram(prom, name)
        self.assertGreaterEqual(self.value(prom, name + "_sum"), s0)
        self.assertGreaterEqual(self.value(prom, name + "_count"), c1)
        self.assert_well_formed(prom)


# --------------------------------------------------------------------------
# 2. /readyz and /healthz


class ReadinessTest(OpsCase):

    def test_readyz_follows_nats_and_the_drain(self):
        nats = self.res.nats_server("n")
        hold_route = {"command": "HOLD", "subject": "svc.ops.hold", "mode": "request",
                      "timeout_ms": 20000}
        gw = self.start_gateway("gwr", nats, routes=[hold_route], extra=[
            "--nats.reconnect_wait_ms=100", "--nats.reconnect_jitter_ms=0",
            "--drain.window_ms=2000", "--drain.timeout_ms=30000"])
        status, body = self.ready(gw)
        self.assertEqual((200, True), (status, body.get("ready")), "readyz at start: %r" % body)
        self.assertEqual((200, {"status": "ok"}), self.healthz(gw))
        client = self.res.ws(gw, "?user=alice")

        # NATS gone: not ready, still alive.
        nats.kill()
        body = self.wait_ready_status(gw, 503, NATS_DOWN_TIMEOUT, "after killing nats-server")
        self.assertEqual(False, body.get("ready"), "readyz body: %r" % body)
        self.assertTrue(body.get("reason"), "readyz 503 without a reason: %r" % body)
        self.assertEqual(200, self.healthz(gw)[0], "healthz while NATS is down")
        self.assertEqual(0, self.metric(gw, "wsgw_nats_connected"))
        self.assertTrue(client.health(), "the client is served while NATS is down")

        # NATS back on the same port: ready again.
        nats.restart()
        body = self.wait_ready_status(gw, 200, NATS_DOWN_TIMEOUT, "after restarting nats-server")
        self.assertEqual(True, body.get("ready"))
        self.wait_gateway_ready([nats], gw)
        self.wait_subject([nats], gw, "wsgw.user.alice")

        # A request kept in flight by a service that answers only when told,
        # so the drain lasts until then.
        held = []

        def hold(env, msg):
            held.append(msg.reply)
            return None

        svc = self.res.service(nats.url, "svc.ops.hold", hold)
        client.send({"command": "HOLD", "traceId": "hold-1", "data": {}})
        self.assertIsNotNone(svc.wait_received(1), "HOLD never reached the service")

        gw.proc.send_signal(signal.SIGTERM)
        body = self.wait_ready_status(gw, 503, IO_TIMEOUT, "after SIGTERM")
        self.assertEqual(False, body.get("ready"))
        self.assertIn("drain", str(body.get("reason")), "readyz while draining: %r" % body)
        self.assertEqual(200, self.healthz(gw)[0], "healthz while draining")
        m, skipped = client.recv_until(lambda r: r.get("command") == "RECONNECT", IO_TIMEOUT)
        self.assertIsNotNone(m, "no RECONNECT; got %r" % skipped)
        # The request still waits: the drain goes on, and so does 503.
        self.assertIsNone(client.wait_closed(0.3), "closed with a request in flight")
        self.assertEqual(503, self.ready(gw)[0], "readyz later in the drain")
        self.assertEqual(0, self.metric(gw, "wsgw_ready"))

        svc.client.pub(held[0], {"code": 0, "data": {"released": True}})
        m, skipped = client.recv_until(lambda r: r.get("command") == "HOLD", IO_TIMEOUT)
        self.assertIsNotNone(m, "no HOLD reply; got %r" % skipped)
        self.assertEqual((0, {"released": True}), (m["code"], m["data"]))
        self.assertEqual(1012, (client.wait_closed(IO_TIMEOUT) or (None,))[0])
        self.assertEqual(0, self.wait_exit(gw, 20.0), "gateway exit status")


# --------------------------------------------------------------------------
# 3. The push API


class PushApiTest(OpsCase):

    def setUp(self):
        super().setUp()
        self.nats = self.res.nats_server("n")

    def test_push_targets_across_two_gateways(self):
        ga = self.start_gateway("gwa", self.nats, api_key=API_KEY)
        gb = self.start_gateway("gwb", self.nats, api_key=API_KEY)
        a1 = self.res.ws(ga, "?user=alice")
        b1 = self.res.ws(ga, "?user=bob")
        a2 = self.res.ws(gb, "?user=alice")
        c1 = self.res.ws(gb, "?user=carol")
        everyone = [a1, b1, a2, c1]
        for gw, user in ((ga, "alice"), (ga, "bob"), (gb, "alice"), (gb, "carol")):
            self.wait_subject([self.nats], gw, "wsgw.user." + user)

        # To a user: both of alice's connections, one on each gateway.
        r = self.api_ok(ga, "/v1/push", {"user": "alice", "command": "NEWS", "traceId": "api-u",
                                         "data": {"n": 1}})
        self.assertEqual("wsgw.user.alice", r.json().get("subject"))
        for c in (a1, a2):
            m = self.expect_push(c, "api-u", label="user push")
            self.assertEqual({"command": "NEWS", "traceId": "api-u", "data": {"n": 1}, "code": 0,
                              "message": "success"}, m)
        self.expect_silence(everyone, label="after the push to alice")

        # To one connection on the other gateway (posted to A, held by B).
        self.api_ok(ga, "/v1/push", {"conn": c1.conn_id, "command": "NEWS", "traceId": "api-c"})
        self.expect_push(c1, "api-c", label="conn push")
        self.expect_silence(everyone, label="after the push to carol's connection")

        # To a group: bob joins through the API, carol's connection through
        # wsgw.ctl.join; the push is posted to B.
        self.api_ok(ga, "/v1/groups/join", {"group": "ops", "user": "bob"})
        pub = self.res.nats_client(self.nats.url, name="publisher")
        pub.publish("wsgw.ctl.join", {"group": "ops", "conn": c1.conn_id})
        self.wait_subject([self.nats], ga, "wsgw.group.ops")
        self.wait_subject([self.nats], gb, "wsgw.group.ops")
        self.api_ok(gb, "/v1/push", {"group": "ops", "command": "NEWS", "traceId": "api-g"})
        self.expect_push(b1, "api-g", label="group push on bob")
        self.expect_push(c1, "api-g", label="group push on carol")
        self.expect_silence(everyone, label="after the group push")

        # Bob leaves through the API: the group is carol alone.
        self.api_ok(ga, "/v1/groups/leave", {"group": "ops", "user": "bob"})
        self.wait_subject([self.nats], ga, "wsgw.group.ops", present=False)
        self.api_ok(ga, "/v1/push", {"group": "ops", "command": "NEWS", "traceId": "api-g2"})
        self.expect_push(c1, "api-g2", label="group push after bob left")
        self.expect_silence(everyone, label="after the second group push")

        # To everyone, on both gateways.
        self.api_ok(gb, "/v1/push", {"all": True, "command": "NEWS", "traceId": "api-all",
                                     "code": 7, "message": "m"}, header="x-api-key")
        for c in everyone:
            m = self.expect_push(c, "api-all", label="broadcast")
            self.assertEqual((7, "m"), (m["code"], m["message"]))
        self.expect_silence(everyone, label="after the broadcast")

    def test_kick_through_the_api(self):
        ga = self.start_gateway("gwa", self.nats, api_key=API_KEY)
        gb = self.start_gateway("gwb", self.nats, api_key=API_KEY)
        a1 = self.res.ws(ga, "?user=alice")
        a2 = self.res.ws(gb, "?user=alice")
        b1 = self.res.ws(ga, "?user=bob")
        b2 = self.res.ws(ga, "?user=bob")

        self.api_ok(ga, "/v1/kick", {"user": "alice", "reason": "maintenance"})
        self.assertEqual((4003, "maintenance"), a1.wait_closed(IO_TIMEOUT))
        self.assertEqual((4003, "maintenance"), a2.wait_closed(IO_TIMEOUT))
        self.assertTrue(b1.health() and b2.health(), "bob's connections survive alice's kick")

        self.api_ok(gb, "/v1/kick", {"conn": b1.conn_id})
        self.assertEqual(4003, (b1.wait_closed(IO_TIMEOUT) or (None,))[0])
        self.assertTrue(b2.health(), "bob's other connection survives the kick of one")

    def test_api_key_and_bad_requests(self):
        gw = self.start_gateway("gwk", self.nats, api_key=API_KEY)
        nokey = self.start_gateway("gwn", self.nats)
        a = self.res.ws(gw, "?user=alice")
        self.wait_subject([self.nats], gw, "wsgw.user.alice")
        push = {"user": "alice", "command": "NEWS", "traceId": "refused"}

        def refused(r, status, label):
            self.assertEqual(status, r.status, "%s: %r" % (label, r))
            self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                            "%s: content-type %r" % (label, r.headers.get("content-type")))
            body = r.json()
            self.assertEqual(status, body.get("code"), "%s: %r" % (label, body))
            self.assertTrue(body.get("message"), "%s: no message: %r" % (label, body))
            return body

        r = self.api(gw, "/v1/push", push, key=None)
        refused(r, 401, "no key")
        self.assertIn("bearer", r.headers.get("www-authenticate", "").lower(),
                      "401 without WWW-Authenticate: %r" % r.headers)
        refused(self.api(gw, "/v1/push", push, key="wrong-key"), 403, "wrong bearer key")
        refused(self.api(gw, "/v1/push", push, key=API_KEY + "x", header="x-api-key"), 403,
                "wrong X-Api-Key")
        refused(self.api(gw, "/v1/kick", {"user": "alice"}, key=None), 401, "kick without key")
        refused(self.api(gw, "/v1/groups/join", {"group": "g", "user": "alice"}, key="nope"),
                403, "join with a wrong key")

        body = refused(self.api(gw, "/v1/push", "{oops"), 400, "malformed JSON")
        self.assertIn("JSON", body["message"])
        refused(self.api(gw, "/v1/push", "[1,2]"), 400, "JSON array")
        refused(self.api(gw, "/v1/push", {"users": "alice", "command": "NEWS"}), 400,
                "unknown field")
        refused(self.api(gw, "/v1/push", {"command": "NEWS"}), 400, "no target")
        refused(self.api(gw, "/v1/push", {"user": "alice"}), 400, "no command")
        refused(self.api(gw, "/v1/kick", "{oops"), 400, "malformed kick")
        r = self.api(gw, "/v1/push", None, method="GET")
        refused(r, 405, "GET /v1/push")

        # No API key configured: the API is off.
        body = refused(self.api(nokey, "/v1/push", push), 403, "gateway without a key")
        refused(self.api(nokey, "/v1/push", push, key=None), 403, "no key on either side")
        refused(self.api(nokey, "/v1/kick", {"user": "alice"}), 403, "kick, no key configured")

        # Nothing of the above reached alice, and she is still connected.
        self.expect_silence([a], label="after refused API calls")
        self.assertTrue(a.health())
        # The right key by either header goes through.
        self.api_ok(gw, "/v1/push", dict(push, traceId="good-1"))
        self.expect_push(a, "good-1", label="bearer key")
        self.api_ok(gw, "/v1/push", dict(push, traceId="good-2"), header="x-api-key")
        self.expect_push(a, "good-2", label="X-Api-Key")
        self.expect_silence([a], label="after the accepted pushes")


# --------------------------------------------------------------------------
# 4. Drain


class DrainTest(OpsCase):

    WINDOW_MS = 1500
    TIMEOUT_MS = 10000
    SERVICE_DELAY = 0.8

    def test_drain_answers_requests_in_flight_then_closes_1012(self):
        nats = self.res.nats_server("n")
        slow_route = {"command": "SLOW", "subject": "svc.ops.slow", "mode": "request",
                      "timeout_ms": 8000}
        gw = self.start_gateway("gwdr", nats, routes=[slow_route], extra=[
            "--drain.window_ms=%d" % self.WINDOW_MS, "--drain.timeout_ms=%d" % self.TIMEOUT_MS])
        timers = []

        def slow(env, msg):
            # Answered later from a timer thread: the NATS reader stays free.
            t = threading.Timer(self.SERVICE_DELAY, lambda: svc.client.pub(
                msg.reply, {"code": 0, "data": {"echo": (env or {}).get("data")}}))
            t.daemon = True
            timers.append(t)
            t.start()
            return None

        svc = self.res.service(nats.url, "svc.ops.slow", slow)
        self.addCleanup(lambda: [t.cancel() for t in timers])

        clients = [self.res.ws(gw, "?user=u%02d" % i) for i in range(20)]
        senders = clients[::3]
        for c in senders:
            c.send({"command": "SLOW", "traceId": "slow-" + c.conn_id, "data": c.conn_id})
        self.assertIsNotNone(svc.wait_received(len(senders)),
                             "the service did not receive all %d requests" % len(senders))

        collectors = [Collector(c, 30.0) for c in clients]
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        bound = self.TIMEOUT_MS / 1000.0 + 5.0
        code = self.wait_exit(gw, bound)
        self.assertEqual(0, code, "gateway exit status (None: still running after %.0f s)" % bound)
        for col in collectors:
            self.assertTrue(col.join(10.0), "a client's collector did not finish")

        reconnect_times = []
        for c, col in zip(clients, collectors):
            msgs = [m for _, m in col.got]
            rec = [t for t, m in col.got if m.get("command") == "RECONNECT"]
            self.assertEqual(1, len(rec), "%s: RECONNECTs %r" % (c.conn_id, msgs))
            rm = next(m for m in msgs if m.get("command") == "RECONNECT")
            self.assertEqual({"reason": "draining"}, rm.get("data"))
            self.assertEqual(0, rm.get("code"))
            reconnect_times.append(rec[0] - t0)
            if c in senders:
                replies = [m for m in msgs if m.get("command") == "SLOW"]
                self.assertEqual(1, len(replies), "%s: SLOW replies %r" % (c.conn_id, msgs))
                self.assertEqual(0, replies[0]["code"], "%s: %r" % (c.conn_id, replies[0]))
                self.assertEqual("slow-" + c.conn_id, replies[0]["traceId"])
                self.assertEqual({"echo": c.conn_id}, replies[0]["data"])
            other = [m for m in msgs if m.get("command") not in ("RECONNECT", "SLOW")]
            self.assertEqual([], other, "%s: unexpected messages" % c.conn_id)
            self.assertEqual(1012, c.close_code, "%s: close code %r (%r)"
                             % (c.conn_id, c.close_code, c.close_reason))

        note("RECONNECT times after SIGTERM (s): %s; exit after %.2f s"
             % (["%.2f" % t for t in sorted(reconnect_times)], time.monotonic() - t0))
        # Told over the window, not all at once (generous bounds: a behaviour
        # check, not a timing one).
        reconnect_times.sort()
        first = reconnect_times[0]
        within_100ms = sum(1 for t in reconnect_times if t - first <= 0.1)
        self.assertLess(within_100ms, len(clients),
                        "every RECONNECT within 100 ms: %r" % reconnect_times)
        self.assertGreaterEqual(reconnect_times[-1] - first, 0.3,
                                "RECONNECTs not spread: %r" % reconnect_times)

        events = gw.events()
        names = [e.get("event") for e in events]
        self.assertIn("drain_started", names)
        self.assertIn("stopped", names)
        self.assertNotIn("drain_deadline", names,
                         "the drain needed its deadline although every request was answered")


# --------------------------------------------------------------------------
# 5. Slow reader


class SlowConsumerTest(OpsCase):

    PUSHES = 2000
    PUSH_BYTES = 4096
    RSS_GROWTH_LIMIT_KIB = 64 * 1024

    def test_slow_reader_is_dropped_and_others_are_served(self):
        nats = self.res.nats_server("n")
        gw = self.start_gateway("gwsc", nats, extra=[
            "--ws.max_message_bytes=16384", "--ws.send_queue_limit_bytes=65536"])
        pid = gw.proc.pid
        fast = self.res.ws(gw, "?user=fast")
        # Completes the upgrade, reads WELCOME, then never reads again.
        raw, welcome = raw_ws_open(gw, "?user=slow", rcvbuf=4096)
        self.addCleanup(raw.close)
        slow_conn = welcome["data"]["connId"]
        self.wait_subject([nats], gw, "wsgw.user.slow")
        self.wait_subject([nats], gw, "wsgw.user.fast")
        pub = self.res.nats_client(nats.url, name="publisher")
        c4002 = self.value(self.scrape(gw), "wsgw_closes_total", {"code": "4002"}, True)

        rss0 = read_rss_kib(pid)
        self.assertIsNotNone(rss0, "no VmRSS for pid %d" % pid)
        peak = rss0
        filler = "x" * self.PUSH_BYTES
        fast_ids = []
        for i in range(self.PUSHES):
            payload, _ = push_payload(i=i, blob=filler)
            pub.pub("wsgw.user.slow", payload)
            if i % 200 == 0:
                payload, tid = push_payload(i=i, to="fast")
                pub.pub("wsgw.user.fast", payload)
                fast_ids.append(tid)
                self.assertTrue(pub.flush(10.0), "publisher flush at %d" % i)
                peak = max(peak, read_rss_kib(pid) or 0)
        self.assertTrue(pub.flush(10.0))

        ev = gw.wait_for(lambda o: o.get("event") == "slow_consumer" and o.get("conn") == slow_conn,
                         20.0)
        self.assertIsNotNone(ev, "no slow_consumer event for %s" % slow_conn)
        # The gateway closes the TCP connection (after its close frame's grace).
        self.assertTrue(self._socket_ends(raw.sock, 15.0),
                        "the slow reader's TCP connection was not closed")

        # The reader of another user got every push, in order.
        for tid in fast_ids:
            m, skipped = fast.recv_until(lambda r: r.get("traceId") == tid, 10.0)
            self.assertIsNotNone(m, "fast: push %s missing; got %r" % (tid, skipped[-3:]))
            self.assertEqual([], skipped, "fast: unexpected messages before %s" % tid)
        self.assertTrue(fast.health(), "the other client is still served")
        payload, tid = push_payload(after=True)
        pub.publish("wsgw.user.fast", payload)
        self.expect_push(fast, tid, label="fast after the slow consumer")

        self.wait_metric(gw, "wsgw_closes_total", c4002 + 1, {"code": "4002"})
        self.wait_metric(gw, "wsgw_connections", 1)

        peak = max(peak, read_rss_kib(pid) or 0, read_rss_kib(pid, "VmHWM") or 0)
        note("RSS %d KiB at start, peak %d KiB; slow_consumer event %r" % (rss0, peak, ev))
        self.assertLess(peak - rss0, self.RSS_GROWTH_LIMIT_KIB,
                        "gateway RSS grew from %d KiB to a peak of %d KiB" % (rss0, peak))

    @staticmethod
    def _socket_ends(sock, timeout):
        """Reads (and discards) until EOF or a reset: the peer closed."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(min(left, 1.0))
            try:
                if not sock.recv(1 << 16):
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False


if __name__ == "__main__":
    unittest.main()
