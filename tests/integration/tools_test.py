#!/usr/bin/python3
"""tools/example_service and tools/wsgw_cli against a real nats-server.

Run with Debian's interpreter (python3-websockets 10.4):
  EXAMPLE_SERVICE=build/tools/example_service WSGW_CLI=build/tools/wsgw-cli \\
    /usr/bin/python3 tests/integration/tools_test.py -v

NATS is observed with a tiny raw-protocol client (CONNECT, SUB, PUB, MSG over a
socket), so nothing here depends on nats.c. `wsgw-cli connect` is checked
against a fake gateway built on python3-websockets; the real gateway path is
tested elsewhere. Everything listens on 127.0.0.1; every wait is bounded.
"""

import asyncio
import http
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

EXAMPLE_SERVICE = os.environ.get("EXAMPLE_SERVICE", "")
WSGW_CLI = os.environ.get("WSGW_CLI", "")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


def read_file(path):
    with open(path) as f:
        return f.read()


def closed_port():
    """A loopback port nobody listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """nats-server on 127.0.0.1; `port` None lets the server pick one (-p -1),
    read back from its ports file."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="wsgw-tools-nats-")
        self.log = open(os.path.join(self.dir, "nats.log"), "wb")
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port if port else -1),
             "-ports_file_dir", self.dir],
            stdout=self.log, stderr=subprocess.STDOUT)
        ports_file = os.path.join(self.dir, "nats-server_%d.ports" % self.proc.pid)
        try:
            wait_until(lambda: self.proc.poll() is not None or os.path.exists(ports_file), 10,
                       "nats-server's ports file")
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited: %s" % self._log_text())
            # The file may be seen before it is written completely.
            wait_until(lambda: read_file(ports_file).endswith("}"), 5, "ports file content")
            url = json.loads(read_file(ports_file))["nats"][0]
            self.port = int(url.rsplit(":", 1)[1])
        except BaseException:
            self.stop()
            raise
        self.url = "nats://127.0.0.1:%d" % self.port

    def _log_text(self):
        with open(os.path.join(self.dir, "nats.log"), "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RawNats:
    """Just enough of the NATS client protocol: no headers, no TLS."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.pending = []  # (subject, sid, reply, payload) read but not yet taken
        self.next_sid = 0
        deadline = time.monotonic() + timeout
        info = self._line(deadline)
        assert info.startswith(b"INFO "), info
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"tools_test"}\r\n')
        self.sync()

    def close(self):
        self.sock.close()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no NATS message in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no NATS message in time")
        if not data:
            raise ConnectionError("NATS server closed the connection")
        self.buf += data

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_op(self, deadline):
        """Reads one operation; answers PINGs. Returns "PONG" or a MSG tuple."""
        while True:
            line = self._line(deadline)
            if line.startswith(b"MSG "):
                parts = line.decode().split(" ")
                if len(parts) == 5:
                    _, subject, sid, reply, size = parts
                else:
                    _, subject, sid, size = parts
                    reply = None
                size = int(size)
                while len(self.buf) < size + 2:
                    self._fill(deadline)
                payload, self.buf = self.buf[:size], self.buf[size + 2:]
                return (subject, int(sid), reply, payload)
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line == b"PONG":
                return "PONG"
            elif line.startswith(b"-ERR"):
                raise AssertionError("NATS error: %r" % line)
            # +OK and INFO updates are ignored.

    def sync(self, timeout=5.0):
        """Round trip: everything sent before has been processed by the server."""
        deadline = time.monotonic() + timeout
        self.sock.sendall(b"PING\r\n")
        while True:
            op = self._read_op(deadline)
            if op == "PONG":
                return
            self.pending.append(op)

    def sub(self, subject):
        self.next_sid += 1
        self.sock.sendall(b"SUB %s %d\r\n" % (subject.encode(), self.next_sid))
        self.sync()
        return self.next_sid

    def unsub(self, sid):
        self.sock.sendall(b"UNSUB %d\r\n" % sid)

    def pub(self, subject, payload, reply=None):
        head = "PUB %s %s%d\r\n" % (subject, reply + " " if reply else "", len(payload))
        self.sock.sendall(head.encode() + payload + b"\r\n")

    def next_msg(self, sid=None, timeout=5.0):
        """The next message (of subscription `sid` when given); TimeoutError if none."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.pending):
                if sid is None or m[1] == sid:
                    return self.pending.pop(i)
            op = self._read_op(deadline)
            if op != "PONG":
                self.pending.append(op)

    def request(self, subject, payload, timeout=2.0):
        """Payload of the first reply, parsed as JSON."""
        inbox = "_INBOX.tools_test.%d" % (self.next_sid + 1)
        sid = self.sub(inbox)
        try:
            self.pub(subject, payload, inbox)
            return json.loads(self.next_msg(sid, timeout)[3])
        finally:
            self.unsub(sid)

    def assert_no_msg(self, sid, wait=0.3):
        time.sleep(wait)
        self.sync()
        got = [m for m in self.pending if m[1] == sid]
        assert not got, "unexpected messages: %r" % got


def envelope(command, user="alice", data=None, trace="t-1"):
    env = {"command": command, "traceId": trace, "user": {"id": user, "name": user.title()},
           "conn": "gw1.2", "gateway": "gw1"}
    if data is not None:
        env["data"] = data
    return json.dumps(env).encode()


class Service:
    """example_service with its JSON log lines in a file."""

    def __init__(self, nats_url, *args):
        self.dir = tempfile.mkdtemp(prefix="wsgw-tools-svc-")
        self.log_path = os.path.join(self.dir, "service.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([EXAMPLE_SERVICE, "--nats", nats_url, "--log-level", "debug",
                                      *args], stdout=self.log, stderr=subprocess.STDOUT)

    def events(self):
        out = []
        with open(self.log_path, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"event": "unparsed", "line": line})
        return out

    def count(self, event):
        return sum(1 for e in self.events() if e.get("event") == event)

    def wait_event(self, event, timeout=10.0, count=1):
        wait_until(lambda: self.count(event) >= count, timeout,
                   "log event %r; log: %r" % (event, self.events()[-10:]))

    def wait_ready(self, nats, timeout=15.0):
        """Until an echo request is answered (subscriptions are in place)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return nats.request("svc.example.echo", envelope("ECHO", data={"ping": 1}), 0.3)
            except TimeoutError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("example_service not ready; log: %r" % self.events())

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.log.close()
                raise AssertionError("example_service ignored SIGTERM")
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.log.closed:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_cli(*args, input=None, timeout=20):
    return subprocess.run([WSGW_CLI, *args], input=input.encode() if input is not None else None,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


# One nats-server and one example_service for the request/reply and publish tests.
NATS = None
SERVICE = None


def setUpModule():
    global NATS, SERVICE
    if not EXAMPLE_SERVICE or not WSGW_CLI:
        raise unittest.SkipTest("set EXAMPLE_SERVICE and WSGW_CLI")
    NATS = NatsServer()
    SERVICE = Service(NATS.url)
    nc = RawNats(NATS.port)
    try:
        SERVICE.wait_ready(nc)
    finally:
        nc.close()


def tearDownModule():
    if SERVICE:
        try:
            SERVICE.stop()
        finally:
            SERVICE.cleanup()
    if NATS:
        NATS.stop()


class ExampleServiceTest(unittest.TestCase):
    def setUp(self):
        self.nc = RawNats(NATS.port)

    def tearDown(self):
        self.nc.close()

    def test_echo_returns_the_data(self):
        data = {"text": "hi", "n": [1, 2, {"x": None}]}
        reply = self.nc.request("svc.example.echo", envelope("ECHO", data=data))
        self.assertEqual(reply, {"code": 0, "message": "success", "data": data})

    def test_echo_without_data_replies_null(self):
        reply = self.nc.request("svc.example.echo", envelope("ECHO"))
        self.assertEqual(reply, {"code": 0, "message": "success", "data": None})

    def test_notify_replies_at_once_then_pushes_to_the_user(self):
        sid = self.nc.sub("wsgw.user.bob@example%2Ecom")
        start = time.monotonic()
        reply = self.nc.request("svc.example.notify",
                                envelope("NOTIFY_ME", user="bob@example.com", trace="t-42",
                                         data={"delayMs": 400, "text": "report ready"}))
        replied = time.monotonic() - start
        self.assertEqual(reply, {"code": 0, "data": {"scheduled": True, "delayMs": 400}})
        self.assertLess(replied, 0.35, "the reply waited for the delay")
        subject, _, _, payload = self.nc.next_msg(sid, timeout=5)
        pushed = time.monotonic() - start
        self.assertEqual(subject, "wsgw.user.bob@example%2Ecom")
        self.assertEqual(json.loads(payload),
                         {"command": "NOTIFY", "traceId": "t-42",
                          "data": {"text": "report ready", "from": "example_service"}})
        self.assertGreaterEqual(pushed, 0.39)

    def test_notify_defaults_and_cap(self):
        sid = self.nc.sub("wsgw.user.carol")
        reply = self.nc.request("svc.example.notify", envelope("NOTIFY_ME", user="carol"))
        self.assertEqual(reply, {"code": 0, "data": {"scheduled": True, "delayMs": 500}})
        push = json.loads(self.nc.next_msg(sid, timeout=5)[3])
        self.assertEqual(push["data"], {"text": "hello", "from": "example_service"})
        self.assertEqual(push["traceId"], "t-1")

        reply = self.nc.request("svc.example.notify",
                                envelope("NOTIFY_ME", user="dave", data={"delayMs": 10**9}))
        self.assertEqual(reply["data"]["delayMs"], 60000)
        reply = self.nc.request("svc.example.notify",
                                envelope("NOTIFY_ME", user="dave", data={"delayMs": -5}))
        self.assertEqual(reply["data"]["delayMs"], 0)

    def test_notify_refuses_bad_data(self):
        for data in ({"delayMs": "soon"}, {"text": 5}, [1, 2]):
            reply = self.nc.request("svc.example.notify", envelope("NOTIFY_ME", data=data))
            self.assertEqual(reply["code"], 460, data)

    def test_bad_envelope_is_460(self):
        bad = [b"not json", b"[]", b'{"command":"ECHO"}', b'{"user":{"id":""}}',
               b'{"user":"alice"}', b""]
        for subject in ("svc.example.echo", "svc.example.notify"):
            for payload in bad:
                reply = self.nc.request(subject, payload)
                self.assertEqual(reply, {"code": 460, "message": "bad envelope"},
                                 (subject, payload))

    def test_track_is_counted_and_not_answered(self):
        before = SERVICE.count("track")
        inbox = "_INBOX.tools_test.track"
        sid = self.nc.sub(inbox)
        self.nc.pub("svc.example.track", envelope("TRACK", data={"page": "/"}), reply=inbox)
        SERVICE.wait_event("track", count=before + 1)
        self.nc.assert_no_msg(sid)
        last = [e for e in SERVICE.events() if e.get("event") == "track"][-1]
        self.assertEqual(last["count"], before + 1)
        self.assertEqual(last["user"], "alice")


class ServiceLifecycleTest(unittest.TestCase):
    """Each test with its own nats-server and service."""

    def setUp(self):
        self.servers = []
        self.services = []

    def tearDown(self):
        for s in self.services:
            s.cleanup()
        for n in self.servers:
            n.stop()

    def nats(self, port=None):
        n = NatsServer(port)
        self.servers.append(n)
        return n

    def service(self, url, *args):
        s = Service(url, *args)
        self.services.append(s)
        return s

    def test_ticks_on_a_timer_and_sigterm_exits_zero(self):
        n = self.nats()
        nc = RawNats(n.port)
        sid = nc.sub("wsgw.user.t%2Eu")
        svc = self.service(n.url, "--tick-user", "t.u", "--tick-ms", "100", "--queue", "")
        for k in (1, 2, 3):
            subject, _, _, payload = nc.next_msg(sid, timeout=10)
            self.assertEqual(json.loads(payload), {"command": "TICK", "data": {"n": k}})
        nc.close()
        self.assertEqual(svc.stop(), 0)
        events = [e["event"] for e in svc.events()]
        self.assertIn("stopping", events)
        self.assertEqual(events[-1], "stopped")

    def test_waits_for_nats_then_reconnects_after_a_restart(self):
        first = self.nats()
        port = first.port
        first.stop()
        self.servers.remove(first)
        svc = self.service("nats://127.0.0.1:%d" % port)
        svc.wait_event("nats_connecting")

        second = self.nats(port)
        nc = RawNats(port)
        svc.wait_ready(nc)
        svc.wait_event("nats_connected")
        nc.close()

        second.stop()
        self.servers.remove(second)
        svc.wait_event("nats_disconnected")
        third = self.nats(port)
        nc = RawNats(third.port)
        svc.wait_ready(nc)
        svc.wait_event("nats_reconnected")
        nc.close()
        self.assertEqual(svc.stop(), 0)

    def test_queue_group_shares_requests(self):
        n = self.nats()
        a = self.service(n.url)
        b = self.service(n.url)
        a.wait_event("ready")
        b.wait_event("ready")
        nc = RawNats(n.port)
        base_a, base_b = a.count("echo"), b.count("echo")
        # Until both instances answered (the second may still be subscribing).
        sent = 0
        deadline = time.monotonic() + 15
        while a.count("echo") == base_a or b.count("echo") == base_b:
            self.assertLess(time.monotonic(), deadline, "one instance never got a request")
            for _ in range(10):
                reply = nc.request("svc.example.echo", envelope("ECHO", data=sent))
                self.assertEqual(reply["data"], sent)
                sent += 1
            time.sleep(0.05)
        nc.close()
        wait_until(lambda: a.count("echo") + b.count("echo") >= base_a + base_b + sent, 5,
                   "echo log lines")
        time.sleep(0.2)
        self.assertEqual(a.count("echo") + b.count("echo"), base_a + base_b + sent,
                         "each request is handled by exactly one instance")


class CliPublishTest(unittest.TestCase):
    def setUp(self):
        self.nc = RawNats(NATS.port)

    def tearDown(self):
        self.nc.close()

    def publish(self, *args):
        return run_cli("publish", "--nats", NATS.url, *args)

    def expect(self, sid, subject, payload):
        got_subject, _, _, got = self.nc.next_msg(sid, timeout=5)
        self.assertEqual(got_subject, subject)
        self.assertEqual(json.loads(got), payload)

    def test_user_id_is_one_encoded_token(self):
        sid = self.nc.sub("wsgw.user.a%2Eb")
        r = self.publish("--user", "a.b", "--command", "NOTIFY", "--data", '{"x":1}',
                         "--trace-id", "t-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.expect(sid, "wsgw.user.a%2Eb", {"command": "NOTIFY", "traceId": "t-1", "data": {"x": 1}})

    def test_every_target(self):
        sid = self.nc.sub(">")
        cases = [
            (["--conn", "gw1.7"], "wsgw.conn.gw1.7"),
            (["--group", "g 1"], "wsgw.group.g%201"),
            (["--group", "a.>"], "wsgw.group.a%2E%3E"),
            (["--all"], "wsgw.all"),
            (["--prefix", "prod.wsgw", "--user", "bob"], "prod.wsgw.user.bob"),
        ]
        for args, subject in cases:
            r = self.publish(*args, "--command", "PING")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.expect(sid, subject, {"command": "PING"})
        r = self.publish("--all", "--command", "X", "--data", '"text"')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.expect(sid, "wsgw.all", {"command": "X", "data": "text"})

    def test_bad_arguments_publish_nothing(self):
        sid = self.nc.sub(">")
        cases = [
            ["--user", "a", "--command", "X", "--data", "{bad"],
            ["--user", "a", "--command", "X", "--data", ""],
            ["--command", "X"],
            ["--user", "a", "--all", "--command", "X"],
            ["--user", "a"],
            ["--user", "a", "--command", "A B"],
            ["--user", "a", "--command", "X" * 65],
            ["--user", "a", "--command", "X", "--trace-id", "t" * 129],
            ["--user", "", "--command", "X"],
            ["--conn", "nodot", "--command", "X"],
            ["--conn", "gw1.x", "--command", "X"],
            ["--conn", "g*.1", "--command", "X"],
            ["--prefix", "a..b", "--all", "--command", "X"],
            ["--all", "--command", "X", "--bogus"],
            ["--all", "--command", "X", "stray"],
        ]
        for args in cases:
            r = self.publish(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(b"publish", r.stderr)
        self.nc.assert_no_msg(sid, wait=0.1)

    def test_unreachable_nats_fails(self):
        r = run_cli("publish", "--nats", "nats://127.0.0.1:%d" % closed_port(), "--timeout-ms",
                    "500", "--all", "--command", "X", timeout=15)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"connect to nats://", r.stderr)

    def test_ctl_messages(self):
        sid = self.nc.sub("wsgw.ctl.*")
        cases = [
            (["join", "--group", "g.1", "--user", "alice"], "wsgw.ctl.join",
             {"group": "g.1", "user": "alice"}),
            (["leave", "--group", "g", "--conn", "gw1.2"], "wsgw.ctl.leave",
             {"group": "g", "conn": "gw1.2"}),
            (["kick", "--user", "bob", "--reason", "bye now"], "wsgw.ctl.kick",
             {"user": "bob", "reason": "bye now"}),
            (["--prefix", "wsgw", "kick", "--conn", "gw1.3"], "wsgw.ctl.kick", {"conn": "gw1.3"}),
            (["revoke", "--user", "alice", "--reason", "logged out"], "wsgw.ctl.revoke",
             {"user": "alice", "reason": "logged out"}),
            (["revoke", "--token-id", "jti-9", "--ttl-s", "600"], "wsgw.ctl.revoke",
             {"tokenId": "jti-9", "ttlS": 600}),
            # Published as every gateway applies it: a reason over 120 bytes
            # cut on a character boundary (100 x "é" -> 60), a ttlS past a
            # year lowered to a year. Neither refuses the message.
            (["kick", "--user", "bob", "--reason", "\u00e9" * 100], "wsgw.ctl.kick",
             {"user": "bob", "reason": "\u00e9" * 60}),
            (["revoke", "--user", "alice", "--reason", "\u00e9" * 100, "--ttl-s", "999999999"],
             "wsgw.ctl.revoke", {"user": "alice", "reason": "\u00e9" * 60, "ttlS": 31536000}),
        ]
        for args, subject, payload in cases:
            r = run_cli("ctl", "--nats", NATS.url, *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.expect(sid, subject, payload)

    def test_ctl_bad_arguments(self):
        sid = self.nc.sub(">")
        cases = [
            [],
            ["ban", "--user", "a"],
            ["join", "--user", "a"],
            ["join", "--group", "g"],
            ["join", "kick", "--group", "g", "--user", "a"],
            ["kick", "--group", "g", "--user", "a"],
            ["kick", "--user", "a", "--conn", "gw1.1"],
            ["leave", "--group", "g", "--user", "a", "--reason", "x"],
            ["kick", "--conn", "gw1"],
            ["revoke"],
            ["revoke", "--conn", "gw1.1"],
            ["revoke", "--user", "a", "--token-id", "t"],
            ["revoke", "--user", "a", "--ttl-s", "0"],
            ["revoke", "--user", "a", "--ttl-s", "x"],
            ["kick", "--user", "a", "--ttl-s", "5"],
        ]
        for args in cases:
            r = run_cli("ctl", "--nats", NATS.url, *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        # What every gateway would refuse is refused here, with the gateways' reason.
        refused = [
            (["kick", "--user", "u" * 257], b"user must be 1-256 bytes"),
            (["revoke", "--user", "a\x01b"], b"without control characters"),
            (["join", "--group", "g" * 300, "--user", "a"], b"group must be 1-256 bytes"),
            (["kick", "--conn", "a.b.1"], b"conn must be a connection id"),
            (["revoke", "--token-id", "t" * 8193], b"tokenId must be 1-8192 bytes"),
        ]
        for args, reason in refused:
            r = run_cli("ctl", "--nats", NATS.url, *args)
            self.assertEqual(r.returncode, 2, (args[:2], r.stderr))
            self.assertIn(reason, r.stderr, args[:2])
        self.nc.assert_no_msg(sid, wait=0.1)


class FakeGateway:
    """A WebSocket server on 127.0.0.1 that plays the gateway for `connect`.

    mode "echo": WELCOME, then a reply to each message (KICKME: close 4003);
    "push": WELCOME, a PUSH 0.3 s later; "silent": nothing; "refuse": HTTP 401.
    """

    def __init__(self):
        import websockets  # Debian's python3-websockets
        self.websockets = websockets
        self.mode = "echo"
        self.requests = []  # (path, headers)
        self.received = []  # parsed messages
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def start():
            self.server = await websockets.serve(
                self.handler, "127.0.0.1", 0, subprotocols=["wsgw"],
                process_request=self.process_request)
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()

        self.thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise AssertionError("fake gateway did not start")
        self.url = "ws://127.0.0.1:%d/ws" % self.port

    def _run(self, start):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()

    def reset(self, mode):
        self.mode = mode
        self.requests = []
        self.received = []

    async def process_request(self, path, headers):
        self.requests.append((path, headers))
        if self.mode == "refuse":
            body = b'{"code":401,"message":"invalid token: expired"}'
            return (http.HTTPStatus.UNAUTHORIZED,
                    [("Content-Type", "application/json"), ("Connection", "close")], body)
        return None

    async def handler(self, ws, path=None):
        if self.mode == "silent":
            await ws.wait_closed()
            return
        await ws.send(json.dumps({"command": "WELCOME", "traceId": "", "code": 0,
                                  "message": "success",
                                  "data": {"connId": "fake.1", "userId": "alice"}}))
        if self.mode == "push":
            await asyncio.sleep(0.3)
            await ws.send(json.dumps({"command": "PUSH", "data": 1, "code": 0,
                                      "message": "success"}))
        try:
            async for text in ws:
                msg = json.loads(text)
                self.received.append(msg)
                if msg.get("command") == "KICKME":
                    await ws.close(4003, "kicked")
                    return
                await ws.send(json.dumps({"command": msg.get("command"),
                                          "traceId": msg.get("traceId", ""),
                                          "data": msg.get("data"), "code": 0,
                                          "message": "success"}))
        except self.websockets.ConnectionClosed:
            pass


class CliConnectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = FakeGateway()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()

    def connect(self, *args, mode="echo", input=None, url=None):
        self.gw.reset(mode)
        return run_cli("connect", "--url", url or self.gw.url, "--timeout-ms", "10000", *args,
                       input=input)

    def lines(self, r):
        return [json.loads(line) for line in r.stdout.decode().splitlines()]

    def test_query_token_and_stdin_lines_until_eof(self):
        r = self.connect("--token", "abc+/def",
                         input='ECHO {"a":1}\n\nHEALTH\n{"command":"RAW","traceId":"r-1"}\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        path, headers = self.gw.requests[0]
        self.assertEqual(path, "/ws?token=abc%2B%2Fdef")
        self.assertNotIn("Authorization", headers)
        self.assertEqual(self.gw.received, [
            {"command": "ECHO", "traceId": "cli-1", "data": {"a": 1}},
            {"command": "HEALTH", "traceId": "cli-2"},
            {"command": "RAW", "traceId": "r-1"},
        ])
        out = self.lines(r)
        self.assertEqual([m["command"] for m in out], ["WELCOME", "ECHO", "HEALTH", "RAW"])
        self.assertEqual(out[1]["data"], {"a": 1})
        self.assertIn(b"closed code=1000", r.stderr)

    def test_header_auth(self):
        r = self.connect("--token", "abc", "--header-auth", "--exit-after", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        path, headers = self.gw.requests[0]
        self.assertEqual(path, "/ws")
        self.assertEqual(headers["Authorization"], "Bearer abc")
        self.assertEqual([m["command"] for m in self.lines(r)], ["WELCOME"])

    def test_subprotocol_auth(self):
        r = self.connect("--token", "abc", "--subprotocol-auth", "--exit-after", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        path, headers = self.gw.requests[0]
        self.assertEqual(path, "/ws")
        self.assertEqual(headers["Sec-WebSocket-Protocol"], "wsgw, bearer.abc")
        self.assertIn(b"(wsgw)", r.stderr)

    def test_user_and_name_for_auth_none(self):
        r = self.connect("--user", "al ice", "--name", "Al", "--exit-after", "1",
                         url=self.gw.url + "?x=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.gw.requests[0][0], "/ws?x=1&user=al%20ice&name=Al")

    def test_exit_after_waits_for_pushes_despite_eof(self):
        r = self.connect("--user", "alice", "--exit-after", "2", mode="push")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([m["command"] for m in self.lines(r)], ["WELCOME", "PUSH"])

    def test_server_close_code_is_reported(self):
        r = self.connect("--user", "alice", input="KICKME\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"closed code=4003 reason=kicked", r.stderr)

    def test_bad_data_line_is_not_sent(self):
        r = self.connect("--user", "alice", input="ECHO {bad\nHEALTH\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"not sent", r.stderr)
        self.assertEqual(self.gw.received, [{"command": "HEALTH", "traceId": "cli-1"}])

    def test_refused_handshake(self):
        r = self.connect("--token", "old", mode="refuse")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"HTTP 401", r.stderr)
        self.assertIn(b"invalid token: expired", r.stderr)

    def test_timeout_bounds_the_run(self):
        self.gw.reset("silent")
        start = time.monotonic()
        r = run_cli("connect", "--url", self.gw.url, "--user", "a", "--exit-after", "1",
                    "--timeout-ms", "500")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"timed out", r.stderr)
        self.assertLess(time.monotonic() - start, 5)

    def test_connection_refused(self):
        r = run_cli("connect", "--url", "ws://127.0.0.1:%d/ws" % closed_port(), "--user", "a")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"connect to", r.stderr)

    def test_argument_errors(self):
        cases = [
            ["--header-auth"],
            ["--token", "t", "--user", "u"],
            ["--token", "t", "--header-auth", "--subprotocol-auth"],
            ["--name", "n"],
            ["--url", "http://127.0.0.1/ws"],
            ["--url", "wss://127.0.0.1/ws"],
            ["--url", "ws://:80/ws"],
            ["--url", "ws://127.0.0.1:x/ws"],
            ["--exit-after", "0"],
            ["--timeout-ms", "soon"],
            ["--bogus"],
            ["stray"],
        ]
        for args in cases:
            r = run_cli("connect", *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(b"see --help", r.stderr)


class HelpTest(unittest.TestCase):
    def test_help(self):
        for argv, needle in [
            ([EXAMPLE_SERVICE, "--help"], b"--tick-user"),
            ([WSGW_CLI, "--help"], b"connect"),
            ([WSGW_CLI, "connect", "--help"], b"--subprotocol-auth"),
            ([WSGW_CLI, "publish", "--help"], b"--group"),
            ([WSGW_CLI, "ctl", "--help"], b"kick"),
        ]:
            r = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, argv)
            self.assertIn(needle, r.stdout)

    def test_usage_errors(self):
        for argv in ([WSGW_CLI], [WSGW_CLI, "bogus"], [EXAMPLE_SERVICE, "--tick-ms", "5"],
                     [EXAMPLE_SERVICE, "--log-level", "loud"], [EXAMPLE_SERVICE, "x"]):
            r = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 2, argv)


if __name__ == "__main__":
    unittest.main()
