#!/usr/bin/python3
"""Control messages end to end (docs/PROTOCOL.md §6.4): a real nats-server,
the real wsgw binary, the admin HTTP API and wsgw-cli.

What is checked is what issue 12 found broken: a kick or a revocation must
never be dropped for its cosmetic reason (a long one is cut, on a UTF-8
boundary, and the connection is closed all the same), and what is refused is
refused where its sender sees it: the answer to a NATS request, HTTP 400,
wsgw-cli's exit status.

Run with Debian's interpreter (python3-websockets 10.4):
  WSGW_BINARY=build/wsgw WSGW_CLI=build/tools/wsgw-cli \\
    /usr/bin/python3 tests/integration/test_control.py -v

Every test starts its own nats-server and gateway on OS-picked loopback
ports; every wait is bounded.
"""

import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from auth_service import mint_jwt, raw_handshake  # noqa: E402
from nats_helpers import (  # noqa: E402
    HOST, IO_TIMEOUT, NatsTestCase, http_call, parse_prometheus, wait_until)

WSGW_CLI = os.environ.get("WSGW_CLI", "")
SECRET = "control-integration-secret-0123456789abcdef"
API_KEY = "control-it-key-2b7d"

# The reason of issue 12: 100 x "é", 200 bytes of UTF-8. Every gateway cuts
# it to 120 bytes, which is 60 whole characters.
LONG_REASON = "\u00e9" * 100
CUT_REASON = "\u00e9" * 60


class ControlCase(NatsTestCase):
    """One nats-server and a publisher per test; gateways on demand."""

    def setUp(self):
        super().setUp()
        self.nats = self.res.nats_server("n")
        self.pub = self.res.nats_client(self.nats.url, name="publisher")

    def gateway(self, gid, extra=()):
        args = ["--admin.address=" + HOST, "--admin.port=0", "--admin.api_key=" + API_KEY]
        gw = self.res.gateway(gid, self.nats.url, extra_args=tuple(args) + tuple(extra))
        gw.admin_port()
        self.wait_gateway_ready([self.nats], gw)
        return gw

    def jwt_gateway(self, gid):
        return self.gateway(gid, ["--auth.mode=jwt", "--auth.jwt.secret=" + SECRET,
                                  "--auth.jwt.algorithms=HS256"])

    def expect_close(self, client, code, reason):
        closed = client.wait_closed(IO_TIMEOUT)
        self.assertIsNotNone(closed, "%s not closed within %.0f s" % (client.conn_id, IO_TIMEOUT))
        self.assertEqual((code, reason), closed, client.conn_id)

    def assert_open(self, client, label):
        self.assertFalse(client.closed.is_set(), "%s: %s closed: %r"
                         % (label, client.conn_id, client.wait_closed(0)))
        self.assertTrue(client.health(), "%s: HEALTH not answered on %s" % (label, client.conn_id))

    def request(self, verb, payload):
        """Publishes a control message with a reply subject; returns the
        first answer (parsed), or None."""
        inbox = "_INBOX.control-test.%d" % time.monotonic_ns()
        sub = self.pub.sub(inbox)
        self.assertTrue(self.pub.flush(), "subscription to %s not confirmed" % inbox)
        self.pub.pub("wsgw.ctl." + verb, payload, reply=inbox)
        answer = sub.next(IO_TIMEOUT)
        sub.unsubscribe()
        return None if answer is None else answer.json()

    def invalid_controls(self, gw):
        r = http_call("GET", gw.admin_url("/metrics"))
        self.assertEqual(200, r.status, r)
        value = parse_prometheus(r.body.decode("utf-8")).get("wsgw_control_invalid_total")
        self.assertIsNotNone(value, "wsgw_control_invalid_total is not exported")
        return value

    def api(self, gw, path, body):
        return http_call("POST", gw.admin_url(path), body=body,
                         headers={"Authorization": "Bearer " + API_KEY,
                                  "Content-Type": "application/json"})


# ============================================================================
# A long reason costs nothing but its tail


class LongReasonTest(ControlCase):

    def test_kick_with_a_long_reason_closes_4003_with_the_reason_cut(self):
        gw = self.gateway("gwk")
        a1 = self.res.ws(gw, "?user=alice")
        a2 = self.res.ws(gw, "?user=alice")
        b = self.res.ws(gw, "?user=bob")
        self.pub.publish("wsgw.ctl.kick", {"user": "alice", "reason": LONG_REASON})
        self.expect_close(a1, 4003, CUT_REASON)
        self.expect_close(a2, 4003, CUT_REASON)
        self.assert_open(b, "bob after alice's kick")

        self.pub.publish("wsgw.ctl.kick", {"conn": b.conn_id, "reason": LONG_REASON})
        self.expect_close(b, 4003, CUT_REASON)

    def test_revoke_with_a_long_reason_closes_4005_and_refuses_the_token(self):
        gw = self.jwt_gateway("gwr")
        now = int(time.time())
        t_alice = mint_jwt(SECRET, "alice", name="Alice", iat=now - 5, jti="a-1")
        t_bob = mint_jwt(SECRET, "bob", name="Bob", iat=now - 5, jti="b-1")
        a = self.res.ws(gw, "?token=" + t_alice)
        b = self.res.ws(gw, "?token=" + t_bob)

        self.pub.publish("wsgw.ctl.revoke", {"user": "alice", "reason": LONG_REASON})
        self.expect_close(a, 4005, CUT_REASON)
        res = raw_handshake(HOST, gw.port, token=t_alice)
        self.assertEqual(401, res.status, res)
        self.assertIn("revoked", res.json().get("message", ""), res)

        # By token id, with a ttlS far past the one-year bound: lowered, applied.
        self.pub.publish("wsgw.ctl.revoke",
                         {"tokenId": "b-1", "reason": LONG_REASON, "ttlS": 10 * 365 * 86400})
        self.expect_close(b, 4005, CUT_REASON)
        res = raw_handshake(HOST, gw.port, token=t_bob)
        self.assertEqual(401, res.status, res)
        self.assertEqual(0, self.invalid_controls(gw), "a control message was refused")


# ============================================================================
# Refused where the sender sees it


class RequestAnswerTest(ControlCase):

    def test_a_requested_control_is_answered_and_a_bad_one_refused(self):
        gw = self.gateway("gwq")
        a = self.res.ws(gw, "?user=alice")

        lines_before = gw.line_count()
        answer = self.request("kick", {"reason": "no target"})
        self.assertEqual({"code": 400, "message": "give exactly one of user and conn (got neither)"},
                         answer)
        answer = self.request("revoke", b"{not json")
        self.assertEqual({"code": 400, "message": "not valid JSON"}, answer)
        answer = self.request("kick", {"user": "x" * 300})
        self.assertEqual(400, (answer or {}).get("code"), answer)
        self.assertIn("256 bytes", answer.get("message", ""), answer)
        logged = gw.wait_for(lambda o: o.get("event") == "bad_control" and o.get("answered"),
                             IO_TIMEOUT, start=lines_before)
        self.assertIsNotNone(logged, "no bad_control log line for a refused request")
        self.assertEqual(3, self.invalid_controls(gw))
        self.assert_open(a, "after refused control messages")

        answer = self.request("kick", {"user": "alice", "reason": LONG_REASON})
        self.assertEqual({"code": 0, "message": "success"}, answer)
        self.expect_close(a, 4003, CUT_REASON)

    def test_a_published_bad_control_is_logged_and_counted(self):
        gw = self.gateway("gwp")
        a = self.res.ws(gw, "?user=alice")
        lines_before = gw.line_count()
        self.pub.publish("wsgw.ctl.kick", {"user": 5})
        logged = gw.wait_for(lambda o: o.get("event") == "bad_control", IO_TIMEOUT,
                             start=lines_before)
        self.assertIsNotNone(logged, "no bad_control log line")
        self.assertEqual("user must be a string", logged.get("reason"), logged)
        self.assertIs(False, logged.get("answered"), logged)
        self.assertTrue(wait_until(lambda: self.invalid_controls(gw) == 1, IO_TIMEOUT),
                        "wsgw_control_invalid_total did not count the refused message")
        self.assert_open(a, "after a refused control message")


class AdminApiTest(ControlCase):

    def test_kick_with_a_long_reason_through_the_api(self):
        gw = self.gateway("gwa")
        a = self.res.ws(gw, "?user=alice")
        r = self.api(gw, "/v1/kick", {"user": "alice", "reason": LONG_REASON})
        self.assertEqual(202, r.status, r)
        self.expect_close(a, 4003, CUT_REASON)

    def test_a_malformed_kick_is_400_with_the_reason(self):
        gw = self.gateway("gwb")
        a = self.res.ws(gw, "?user=alice")
        cases = [
            ({"user": "alice", "conn": a.conn_id}, "exactly one target"),
            ({"user": "u" * 300}, "256 bytes"),
            ({"conn": "not-a-conn-id"}, "connection id"),
            ({"user": "alice", "reason": 7}, "reason must be a string"),
            (b"{\"user\":", "not valid JSON"),
        ]
        for body, message_part in cases:
            r = self.api(gw, "/v1/kick", body)
            self.assertEqual(400, r.status, (body, r))
            self.assertEqual(400, r.json().get("code"), (body, r))
            self.assertIn(message_part, r.json().get("message", ""), (body, r))
        self.assert_open(a, "after refused kicks")


@unittest.skipUnless(WSGW_CLI, "set WSGW_CLI to the wsgw-cli binary")
class CliTest(ControlCase):

    def cli(self, *args):
        return subprocess.run([WSGW_CLI, "ctl", "--nats", self.nats.url, *args],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)

    def test_cli_kick_with_a_long_reason_closes_with_the_reason_cut(self):
        gw = self.gateway("gwc")
        a = self.res.ws(gw, "?user=alice")
        r = self.cli("kick", "--user", "alice", "--reason", LONG_REASON)
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertIn(b"cut to 120 bytes", r.stderr)
        self.expect_close(a, 4003, CUT_REASON)

    def test_cli_refuses_what_the_gateways_would_refuse(self):
        gw = self.gateway("gwd")
        a = self.res.ws(gw, "?user=alice")
        for args, message_part in [
                (["kick", "--user", "u" * 300], b"256 bytes"),
                (["join", "--group", "g\x01", "--user", "alice"], b"control characters"),
                (["revoke", "--token-id", "t" * 9000], b"8192 bytes")]:
            r = self.cli(*args)
            self.assertEqual(2, r.returncode, (args[0], r.stderr))
            self.assertIn(message_part, r.stderr, args[0])
        self.assertEqual(0, self.invalid_controls(gw), "a refused message reached the gateway")
        self.assert_open(a, "after refused wsgw-cli calls")


if __name__ == "__main__":
    unittest.main(verbosity=2)
