#!/usr/bin/python3
"""End-to-end tests of the wsgw binary with python3-websockets (Debian's).

Runs under /usr/bin/python3. The binary comes from the environment variable
WSGW_BINARY; it is started on 127.0.0.1 with --server.port=0 and the port is
read from its `listening` log line (JSON on stderr), so runs never collide.
docs/PROTOCOL.md is the specification every expectation comes from.

Works with websockets 10.x (asyncio `websockets.connect`) and newer versions.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import websockets
import websockets.exceptions as wsexc

SECRET = "python-integration-secret-0123456789abcdef"
IO_TIMEOUT = 5.0
# websockets 14 renamed connect()'s extra_headers (Debian 12 ships 10.4).
HEADERS_ARG = ("additional_headers" if int(websockets.__version__.split(".")[0]) >= 14
               else "extra_headers")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_token(user, exp=None, secret=SECRET):
    """An HS256 JWT with sub, name, iat and exp (default: an hour from now)."""
    now = int(time.time())
    claims = {"sub": user, "name": "User " + user, "iat": now,
              "exp": now + 3600 if exp is None else exp}
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, claims))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


class Gateway:
    """The wsgw binary as a child process; every stderr line is kept."""

    def __init__(self, *args):
        binary = os.environ.get("WSGW_BINARY")
        if not binary:
            raise RuntimeError("set WSGW_BINARY to the wsgw binary")
        self.args = [binary, "--server.address=127.0.0.1", "--server.port=0",
                     "--auth.jwt.secret=" + SECRET, "--gateway.id=pytest",
                     "--log.level=debug", *args]
        self.lines = []
        self.port = None
        self._cond = threading.Condition()
        self._eof = False
        self.proc = None
        self.scratch = None

    def start(self, timeout=10.0):
        # Its own scratch directory (relative defaults such as the embedded
        # NATS server's data_dir must not collide with parallel gateways) and
        # its own process group (a last-resort SIGKILL reaches its children).
        self.scratch = tempfile.mkdtemp(prefix="wsgw-pytest-")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     cwd=self.scratch, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.wait_for(lambda o: o.get("event") == "listening", timeout)
        if line is None:
            self.stop()
            raise RuntimeError("gateway did not start:\n" + self.tail())
        self.port = int(line["port"])
        return self

    def _read(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, pred, timeout):
        """The first log line (a JSON object) satisfying pred, or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for text in self.lines[seen:]:
                    try:
                        obj = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and pred(obj):
                        return obj
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    return None
                self._cond.wait(left)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=10.0):
        """SIGTERM, wait, SIGKILL as a last resort; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return self.proc.returncode

    def tail(self, n=40):
        with self._cond:
            return "\n".join(self.lines[-n:])

    def url(self, query=""):
        return "ws://127.0.0.1:%d/ws%s" % (self.port, query)


def run(coro, timeout=30.0):
    """Runs a test coroutine with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def status_of(exc):
    """HTTP status of a refused handshake (websockets 10: InvalidStatusCode,
    newer: InvalidStatus)."""
    if hasattr(exc, "status_code"):
        return exc.status_code
    return exc.response.status_code


def close_code_of(exc):
    rcvd = getattr(exc, "rcvd", None)
    return rcvd.code if rcvd is not None else None


async def recv_json(ws, timeout=IO_TIMEOUT):
    msg = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(msg, str):
        raise AssertionError("binary message from the gateway: %r" % msg)
    return json.loads(msg)


async def request(ws, command, trace_id=None, **fields):
    msg = {"command": command, **fields}
    if trace_id is not None:
        msg["traceId"] = trace_id
    await ws.send(json.dumps(msg))
    return await recv_json(ws)


async def expect_close(ws, timeout=IO_TIMEOUT):
    """Reads until the gateway closes; returns its close code."""
    try:
        for _ in range(16):
            await asyncio.wait_for(ws.recv(), timeout)
    except wsexc.ConnectionClosed as exc:
        return close_code_of(exc)
    raise AssertionError("no close after 16 messages")


async def connect(gw, query="", headers=None, subprotocols=None):
    """Opens a connection, reads WELCOME and returns (websocket, welcome)."""
    ws = await websockets.connect(gw.url(query), subprotocols=subprotocols,
                                  open_timeout=IO_TIMEOUT, close_timeout=2, ping_interval=None,
                                  **{HEADERS_ARG: headers or {}})
    welcome = await recv_json(ws)
    if welcome.get("command") != "WELCOME":
        raise AssertionError("first message is not WELCOME: %r" % welcome)
    return ws, welcome


async def connect_as(gw, user):
    return await connect(gw, headers={"Authorization": "Bearer " + mint_token(user)})


class PythonClientTest(unittest.TestCase):
    """One gateway for the module: per-user cap 2 (one worker, so the cap is
    exact), messages up to 1024 bytes. Every test uses its own user ids."""

    gw = None

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway("--ws.max_message_bytes=1024", "--limits.max_connections_per_user=2",
                         "--gateway.workers=1").start()

    @classmethod
    def tearDownClass(cls):
        code = cls.gw.stop()
        if code != 0:
            raise AssertionError("gateway exit code %r after SIGTERM\n%s" % (code, cls.gw.tail()))

    def tearDown(self):
        self.assertTrue(self.gw.alive(), "gateway died:\n" + self.gw.tail())

    def run_test(self, coro):
        try:
            run(coro)
        except BaseException:
            print("--- gateway log (tail) ---\n" + self.gw.tail())
            raise

    def assert_error(self, reply, code, command="ERROR", trace_id=""):
        self.assertEqual(reply.get("code"), code, reply)
        self.assertEqual(reply.get("command"), command, reply)
        self.assertEqual(reply.get("traceId", ""), trace_id, reply)

    async def assert_health(self, ws, trace_id="t-health"):
        reply = await request(ws, "HEALTH", trace_id)
        self.assertEqual(reply.get("command"), "HEALTH", reply)
        self.assertEqual(reply.get("code"), 0, reply)
        self.assertEqual(reply.get("traceId"), trace_id, reply)
        self.assertIsInstance(reply["data"]["ts"], int, reply)

    def test_welcome(self):
        async def body():
            ws, welcome = await connect_as(self.gw, "py-alice")
            data = welcome["data"]
            self.assertEqual(welcome["code"], 0)
            self.assertRegex(data["connId"], r"^pytest\.[0-9]+$")
            self.assertEqual(data["userId"], "py-alice")
            self.assertEqual(data["name"], "User py-alice")
            self.assertEqual(data["maxMessageBytes"], 1024)
            self.assertIsInstance(data["heartbeatIntervalMs"], int)
            await ws.close()
        self.run_test(body())

    def test_health_round_trip(self):
        async def body():
            ws, _ = await connect_as(self.gw, "py-health")
            await self.assert_health(ws, "t-py-1")
            await self.assert_health(ws, "t-py-2")
            await ws.close()
        self.run_test(body())

    def test_query_token(self):
        async def body():
            ws, welcome = await connect(self.gw, "?token=" + mint_token("py-query"))
            self.assertEqual(welcome["data"]["userId"], "py-query")
            await ws.close()
        self.run_test(body())

    def test_subprotocol_token(self):
        async def body():
            ws, welcome = await connect(
                self.gw, subprotocols=["wsgw", "bearer." + mint_token("py-subproto")])
            self.assertEqual(ws.subprotocol, "wsgw")
            self.assertEqual(welcome["data"]["userId"], "py-subproto")
            await ws.close()
        self.run_test(body())

    def test_bad_token_is_401(self):
        async def body():
            bad = mint_token("py-bad", secret="not-the-gateway-secret-0123456789")
            with self.assertRaises((wsexc.InvalidStatusCode,
                                    getattr(wsexc, "InvalidStatus", wsexc.InvalidStatusCode))) as cm:
                await connect(self.gw, headers={"Authorization": "Bearer " + bad})
            self.assertEqual(status_of(cm.exception), 401)
        self.run_test(body())

    def test_bad_json_is_400(self):
        async def body():
            ws, _ = await connect_as(self.gw, "py-badjson")
            await ws.send("{not json")
            self.assert_error(await recv_json(ws), 400)
            await self.assert_health(ws)
            await ws.close()
        self.run_test(body())

    def test_unknown_command_is_404(self):
        async def body():
            ws, _ = await connect_as(self.gw, "py-unknown")
            reply = await request(ws, "PY_NOPE", "t-py-nope")
            self.assert_error(reply, 404, "PY_NOPE", "t-py-nope")
            await self.assert_health(ws)
            await ws.close()
        self.run_test(body())

    def test_too_large_closes_1009(self):
        async def body():
            ws, _ = await connect_as(self.gw, "py-large")
            await ws.send(json.dumps({"command": "HEALTH", "traceId": "t-py-big",
                                      "data": "x" * 2000}))
            # Named by the message's first bytes (PROTOCOL.md §2).
            self.assert_error(await recv_json(ws), 413, "HEALTH", "t-py-big")
            self.assertEqual(await expect_close(ws), 1009)
        self.run_test(body())

    def test_per_user_cap_closes_oldest_with_4001(self):
        async def body():
            first, _ = await connect_as(self.gw, "py-capped")
            second, _ = await connect_as(self.gw, "py-capped")
            third, _ = await connect_as(self.gw, "py-capped")
            self.assertEqual(await expect_close(first), 4001)
            await self.assert_health(second)
            await self.assert_health(third)
            await second.close()
            await third.close()
        self.run_test(body())

    def test_binary_is_415(self):
        async def body():
            ws, _ = await connect_as(self.gw, "py-binary")
            await ws.send(b"\x00\x01\x02")
            self.assert_error(await recv_json(ws), 415)
            await self.assert_health(ws)
            await ws.close()
        self.run_test(body())


if __name__ == "__main__":
    unittest.main()
