#!/usr/bin/python3
"""Token lifecycle end to end (docs/PROTOCOL.md §1 handshake refusals, §3
AUTH / TOKEN_EXPIRING / "Token expiry, re-validation and revocation", §5
close codes 4004-4007, §6.2 envelope `user`, §6.4 wsgw.ctl.revoke, §6.6 the
auth service): a real nats-server, the real wsgw binary, a test auth service
(auth_service.AuthService) on a real NATS connection.

Run with Debian's interpreter (python3-websockets 10.4):
  WSGW_BINARY=/path/to/wsgw /usr/bin/python3 tests/integration/test_auth_lifecycle.py -v

Every test starts its own nats-server and gateway(s) on OS-picked loopback
ports. Times: re-validation intervals of 1000 ms (the smallest allowed),
tokens that expire a few seconds after they are minted; every wait is
bounded and generous, the assertions are about behaviour (what arrives, which
close code), and about order in time only where the spec makes it
behaviour (not closed before the grace / the expiry).
"""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from auth_service import AuthService, mint_jwt, raw_handshake  # noqa: E402
from nats_helpers import HOST, IO_TIMEOUT, NatsTestCase, wait_until  # noqa: E402

SECRET = "auth-lifecycle-integration-secret-0123456789abcdef"
AUTH_SUBJECT = "svc.auth.check"


def jwt_args(leeway_s=None, warning_s=None):
    args = ["--auth.mode=jwt", "--auth.jwt.secret=" + SECRET, "--auth.jwt.algorithms=HS256"]
    if leeway_s is not None:
        args.append("--auth.jwt.leeway_s=%d" % leeway_s)
    if warning_s is not None:
        args.append("--auth.expiry_warning_s=%d" % warning_s)
    return args


def service_args(timeout_ms=500, interval_ms=None, batch=None, grace_ms=None):
    args = ["--auth.service.subject=" + AUTH_SUBJECT,
            "--auth.service.timeout_ms=%d" % timeout_ms]
    if interval_ms is not None:
        args.append("--auth.service.revalidate_interval_ms=%d" % interval_ms)
    if batch is not None:
        args.append("--auth.service.revalidate_batch=%d" % batch)
    if grace_ms is not None:
        args.append("--auth.service.unavailable_grace_ms=%d" % grace_ms)
    return args


class AuthCase(NatsTestCase):
    """One nats-server per test; gateways and the auth service on demand."""

    def setUp(self):
        super().setUp()
        self.nats = self.res.nats_server("n")
        self.pub = self.res.nats_client(self.nats.url, name="publisher")

    # Set-up helpers ------------------------------------------------------------
    def gateway(self, gid, args, routes=(), workers=2):
        gw = self.res.gateway(gid, self.nats.url, routes=routes, extra_args=tuple(args),
                              workers=workers)
        self.wait_gateway_ready([self.nats], gw)
        return gw

    def auth_service(self, **kw):
        return self.res.add(AuthService(self.nats.url, AUTH_SUBJECT, **kw))

    def connect(self, gw, token):
        return self.res.ws(gw, "?token=" + token)

    def refused(self, gw, token=None, headers=(), timeout=IO_TIMEOUT):
        return raw_handshake(HOST, gw.port, token=token, headers=headers, timeout=timeout)

    # Assertions ----------------------------------------------------------------
    def assert_refused(self, res, status, message_part=None):
        self.assertEqual(status, res.status, "handshake answer: %r" % res)
        body = res.json()
        self.assertIsInstance(body, dict, "refusal body is not a JSON object: %r" % res)
        self.assertEqual(status, body.get("code"), res)
        if message_part is not None:
            self.assertIn(message_part, str(body.get("message")), res)
        self.assertEqual("close", res.headers.get("connection", "").lower(), res)
        return body

    def expect_message(self, client, command, timeout=IO_TIMEOUT, label=""):
        m, skipped = client.recv_until(lambda r: r.get("command") == command, timeout)
        self.assertIsNotNone(m, "%s: no %s within %.1f s; got %r (closed: %r)"
                             % (label, command, timeout, skipped,
                                client.wait_closed(0) if client.closed.is_set() else None))
        return m, skipped

    def auth(self, client, token=None, trace_id="auth", timeout=IO_TIMEOUT, data=None):
        fields = {} if token is None else {"token": token}
        r = client.request("AUTH", data=data, trace_id=trace_id, timeout=timeout, **fields)
        self.assertIsNotNone(r, "no reply to AUTH (%s) within %.1f s" % (trace_id, timeout))
        self.assertEqual(trace_id, r.get("traceId"), r)
        return r

    def assert_open(self, client, label=""):
        self.assertFalse(client.closed.is_set(), "%s: connection %s closed: %r"
                         % (label, client.conn_id, client.wait_closed(0)))
        self.assertTrue(client.health(), "%s: HEALTH not answered on %s" % (label, client.conn_id))

    def expect_close(self, client, code, timeout, reason=None, label=""):
        closed = client.wait_closed(timeout)
        self.assertIsNotNone(closed, "%s: %s not closed within %.1f s" % (label, client.conn_id,
                                                                          timeout))
        self.assertEqual(code, closed[0], "%s: close %r" % (label, closed))
        if reason is not None:
            self.assertEqual(reason, closed[1], "%s: close %r" % (label, closed))
        return closed

    def sleep_until_wall(self, t_wall):
        left = t_wall - time.time()
        if left > 0:
            time.sleep(min(left, 30.0))


# ============================================================================
# a. mode service: handshakes


class ServiceHandshakeTest(AuthCase):

    def setUp(self):
        super().setUp()
        self.svc = self.auth_service()
        self.gw = self.gateway("gwa", ["--auth.mode=service"] + service_args(timeout_ms=500))

    def test_accepted_handshake_carries_the_services_user(self):
        exp = int(time.time()) + 3600
        user = {"id": "alice", "name": "Alice", "roles": ["admin"]}
        self.svc.set("tok-alice", valid=True, user=user, expiresAt=exp, ttlMs=600000,
                     tokenId="t-81", issuedAt=int(time.time()) - 10)
        c = self.connect(self.gw, "tok-alice")
        w = c.welcome["data"]
        self.assertEqual("alice", w.get("userId"), c.welcome)
        self.assertEqual("Alice", w.get("name"), c.welcome)
        self.assertEqual(exp, w.get("tokenExpiresAt"), c.welcome)
        self.assertTrue(c.health())

        reqs = self.svc.requests("handshake")
        self.assertEqual(1, len(reqs), "handshake requests: %r" % self.svc.requests())
        req = reqs[0]
        self.assertEqual("gwa", req.gateway, req)
        self.assertEqual(1, len(req.items), req)
        item = req.items[0]
        self.assertEqual("tok-alice", item.get("token"), req)
        self.assertIsInstance(item.get("id"), str, req)
        local_port = c._ws.local_address[1]
        self.assertEqual("127.0.0.1:%d" % local_port, item.get("remote"), req)

    def test_welcome_without_expiry_when_the_service_gives_none(self):
        self.svc.set("tok-carol", valid=True, user={"id": "carol"})
        c = self.connect(self.gw, "tok-carol")
        self.assertEqual("carol", c.welcome["data"].get("userId"), c.welcome)
        self.assertIsNone(c.welcome["data"].get("tokenExpiresAt"), c.welcome)
        self.expect_silence([c], window=1.0, label="no TOKEN_EXPIRING for a token without expiry")

    def test_token_in_authorization_header_and_subprotocol(self):
        self.svc.set("tok-bob", valid=True, user={"id": "bob", "name": "Bob"})
        res = self.refused(self.gw, headers=(("Authorization", "Bearer tok-bob"),))
        self.assertEqual(101, res.status, res)
        res = self.refused(self.gw, headers=(("Sec-WebSocket-Protocol", "wsgw, bearer.tok-bob"),))
        self.assertEqual(101, res.status, res)
        self.assertEqual("wsgw", res.headers.get("sec-websocket-protocol"), res)
        tokens = [r.items[0].get("token") for r in self.svc.requests("handshake")]
        self.assertEqual(["tok-bob", "tok-bob"], tokens)

    def test_rejected_handshake_is_401_with_the_services_reason(self):
        self.svc.set("tok-disabled", valid=False, reason="account disabled")
        res = self.refused(self.gw, token="tok-disabled")
        self.assert_refused(res, 401, "account disabled")
        self.assertTrue(res.headers.get("www-authenticate", "").startswith("Bearer"), res)
        req = self.svc.wait_request(lambda r: r.kind == "handshake", 1)
        self.assertIsNotNone(req, "the service saw no handshake request")
        self.assertEqual("tok-disabled", req.items[0].get("token"))
        self.assertEqual("127.0.0.1:%d" % res.local_port, req.items[0].get("remote"), req)

        # A token the service does not know: its default answer's reason.
        res = self.refused(self.gw, token="tok-unknown")
        self.assert_refused(res, 401, "unknown token")
        # No token at all: refused without asking the service.
        before = self.svc.count_requests()
        res = self.refused(self.gw)
        self.assert_refused(res, 401)
        time.sleep(0.2)
        self.assertEqual(before, self.svc.count_requests(), "the service was asked about no token")

    def test_silent_service_is_503_with_retry_after(self):
        self.svc.set("tok-alice", valid=True, user={"id": "alice"})
        self.svc.go_silent()
        t0 = time.monotonic()
        res = self.refused(self.gw, token="tok-alice", timeout=10)
        elapsed = time.monotonic() - t0
        self.assert_refused(res, 503, "auth service unavailable")
        self.assertEqual("5", res.headers.get("retry-after"), res)
        self.assertGreaterEqual(elapsed, 0.3, "503 before the 500 ms timeout: %.2f s" % elapsed)
        self.assertEqual(1, self.svc.count_requests("handshake"))

        # Not listening at all (no responders): 503 as well.
        self.svc.go_silent(False)
        self.svc.stop()
        res = self.refused(self.gw, token="tok-alice", timeout=10)
        self.assert_refused(res, 503, "auth service unavailable")
        self.assertEqual("5", res.headers.get("retry-after"), res)

        # And back: accepted.
        self.svc.restart()
        c = self.connect(self.gw, "tok-alice")
        self.assertEqual("alice", c.welcome["data"]["userId"])

    def test_answers_without_a_usable_result_are_refused(self):
        # §6.6: `user` is required when valid. What a gateway does with such
        # a result is not spelt out; it must not accept the connection.
        self.svc.set("tok-nouser", valid=True)
        res = self.refused(self.gw, token="tok-nouser", timeout=10)
        self.assertIn(res.status, (401, 503), res)
        # "an answer without a result for the item": 503.
        self.svc.set("tok-omit", AuthService.OMIT)
        res = self.refused(self.gw, token="tok-omit", timeout=10)
        self.assert_refused(res, 503)


# ============================================================================
# b. envelope user follows the auth service's answers


class EnvelopeUserTest(AuthCase):
    ROUTES = ({"command": "WHOAMI", "subject": "svc.test.whoami", "mode": "request",
               "timeout_ms": 2000},)

    def test_envelope_user_is_the_services_object_and_follows_revalidation(self):
        svc = self.auth_service()
        whoami = self.res.service(self.nats.url, "svc.test.whoami",
                                  lambda env, msg: {"code": 0, "data": env.get("user")})
        gw = self.gateway("gwb", ["--auth.mode=service"]
                          + service_args(timeout_ms=1000, interval_ms=1000, batch=10),
                          routes=self.ROUTES)
        first = {"id": "alice", "name": "Alice", "tier": "gold"}
        svc.set("tok-alice", valid=True, user=first)
        c = self.connect(gw, "tok-alice")
        r = c.request("WHOAMI", trace_id="w-1")
        self.assertIsNotNone(r, "no WHOAMI reply")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual(first, r.get("data"), "first envelope user")
        env, _ = whoami.received[0]
        self.assertEqual(c.conn_id, env.get("conn"))

        second = {"id": "alice", "name": "Alice Liddell", "tier": "platinum",
                  "roles": ["admin", "ops"]}
        svc.update("tok-alice", user=second)
        start = svc.request_count()
        got = svc.wait_item(lambda req, it: req.kind == "revalidate" and it.get("conn") == c.conn_id,
                            timeout=6, start=start)
        self.assertIsNotNone(got, "no re-validation of %s within 6 s (interval 1000 ms); saw %r"
                             % (c.conn_id, svc.requests(start=start)))
        req, item = got
        self.assertEqual("tok-alice", item.get("token"), req)
        self.assertEqual("alice", item.get("user"), req)

        # The answer has been sent; the next commands see the new object
        # (bounded: the gateway applies the answer asynchronously).
        seen = []

        def new_user_seen():
            r = c.request("WHOAMI", trace_id="w-%d" % len(seen))
            seen.append(r)
            return r is not None and r.get("data") == second

        self.assertTrue(wait_until(new_user_seen, 3.0, 0.1),
                        "envelope user did not change after re-validation; replies %r" % seen[-3:])
        self.assertTrue(c.health())


# ============================================================================
# c, d, e. JWT expiry and refresh (mode jwt, leeway 0, warning 3 s)


class JwtExpiryTest(AuthCase):
    WARNING_S = 3

    def setUp(self):
        super().setUp()
        self.gw = self.gateway("gwc", jwt_args(leeway_s=0, warning_s=self.WARNING_S))

    def token(self, user, exp, **kw):
        return mint_jwt(SECRET, user, exp=exp, name=kw.pop("name", "User " + user), **kw)

    # c --------------------------------------------------------------------------
    def test_refresh_before_expiry_keeps_the_connection(self):
        exp1 = int(time.time()) + 4
        c = self.connect(self.gw, self.token("alice", exp1))
        self.assertEqual(exp1, c.welcome["data"].get("tokenExpiresAt"), c.welcome)

        warn, skipped = self.expect_message(c, "TOKEN_EXPIRING", timeout=exp1 - time.time() + 1,
                                            label="first token")
        self.assertEqual([], skipped)
        self.assertLess(time.time(), exp1 + 0.5, "TOKEN_EXPIRING came after the expiry")
        self.assertEqual(exp1, warn["data"].get("expiresAt"), warn)
        self.assertIsInstance(warn["data"].get("expiresInMs"), int, warn)
        self.assertTrue(0 <= warn["data"]["expiresInMs"] <= 4000, warn)

        # A fresh token of the same user, expiring soon: armed again. Its
        # warning comes about a second after the first token's exp.
        exp2 = int(time.time()) + 7
        r = self.auth(c, self.token("alice", exp2), trace_id="auth-1")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual({"tokenExpiresAt": exp2}, r.get("data"), r)

        warn2, skipped = self.expect_message(c, "TOKEN_EXPIRING", timeout=exp2 - time.time() + 1,
                                             label="second token")
        self.assertEqual([], skipped)
        self.assertEqual(exp2, warn2["data"].get("expiresAt"), warn2)
        # The first token's expiry passed meanwhile: not closed.
        self.assert_open(c, "after the first token's exp")

        # A long one, sent in data.token this time.
        exp3 = int(time.time()) + 3600
        r = self.auth(c, trace_id="auth-2", data={"token": self.token("alice", exp3)})
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual({"tokenExpiresAt": exp3}, r.get("data"), r)

        self.sleep_until_wall(exp2 + 2.0)
        self.assert_open(c, "after the second token's exp (leeway 0)")
        rest = c.drain(0.3)
        self.assertEqual([], [m for m in rest if m.get("command") == "TOKEN_EXPIRING"],
                         "TOKEN_EXPIRING for an hour-long token")

    def test_refresh_to_a_short_token_is_warned_at_once_and_expires(self):
        c = self.connect(self.gw, self.token("alice", int(time.time()) + 3600))
        exp = int(time.time()) + 2  # < WARNING_S
        r = self.auth(c, self.token("alice", exp), trace_id="short")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual({"tokenExpiresAt": exp}, r.get("data"), r)
        warn, _ = self.expect_message(c, "TOKEN_EXPIRING", timeout=1.5, label="short refresh")
        self.assertEqual(exp, warn["data"].get("expiresAt"), warn)
        self.expect_close(c, 4004, timeout=exp - time.time() + 4, label="refreshed token expired")

    # d --------------------------------------------------------------------------
    def test_no_refresh_closes_4004_at_expiry(self):
        exp = int(time.time()) + 3
        c = self.connect(self.gw, self.token("alice", exp))
        warn, _ = self.expect_message(c, "TOKEN_EXPIRING", timeout=exp - time.time() + 1)
        self.assertEqual(exp, warn["data"].get("expiresAt"), warn)
        # Not closed before the token expired...
        self.sleep_until_wall(exp - 0.5)
        self.assertFalse(c.closed.is_set(), "closed before exp: %r" % (c.wait_closed(0),))
        # ...and closed with 4004 once it did (leeway 0).
        self.expect_close(c, 4004, timeout=exp - time.time() + 4, label="expired token")
        rest = c.drain(0.1)
        self.assertEqual([], [m for m in rest if m.get("command") == "TOKEN_EXPIRING"],
                         "TOKEN_EXPIRING pushed more than once for one token: %r" % rest)

    def test_token_with_less_than_the_warning_left_is_warned_at_once(self):
        exp = int(time.time()) + 2  # < WARNING_S
        c = self.connect(self.gw, self.token("alice", exp))
        warn, skipped = self.expect_message(c, "TOKEN_EXPIRING", timeout=1.0)
        self.assertEqual([], skipped)
        self.assertEqual(exp, warn["data"].get("expiresAt"), warn)
        self.assertLessEqual(warn["data"].get("expiresInMs"), 2000, warn)
        self.expect_close(c, 4004, timeout=exp - time.time() + 4)

    # e --------------------------------------------------------------------------
    def test_refresh_with_another_users_token_is_409_and_the_old_token_stays(self):
        exp = int(time.time()) + 5
        c = self.connect(self.gw, self.token("alice", exp))
        r = self.auth(c, self.token("bob", int(time.time()) + 3600), trace_id="auth-bob")
        self.assertEqual(409, r.get("code"), r)
        self.assert_open(c, "after 409")
        self.assertEqual("alice", c.welcome["data"]["userId"])
        # The old token is still in force: its warning and its expiry.
        warn, _ = self.expect_message(c, "TOKEN_EXPIRING", timeout=exp - time.time() + 1)
        self.assertEqual(exp, warn["data"].get("expiresAt"), warn)
        self.sleep_until_wall(exp - 0.5)
        self.assertFalse(c.closed.is_set(), "closed before exp: %r" % (c.wait_closed(0),))
        self.expect_close(c, 4004, timeout=exp - time.time() + 4, label="old token expired")

    def test_refresh_with_an_invalid_token_is_401_and_the_connection_stays(self):
        exp = int(time.time()) + 3600
        c = self.connect(self.gw, self.token("alice", exp))
        bad_sig = mint_jwt("another-secret-entirely-0123456789", "alice", ttl_s=3600)
        expired = self.token("alice", int(time.time()) - 10, iat=int(time.time()) - 100)
        for tid, tok in (("bad-sig", bad_sig), ("expired", expired), ("garbage", "not.a.jwt")):
            r = self.auth(c, tok, trace_id=tid)
            self.assertEqual(401, r.get("code"), r)
            self.assert_open(c, "after AUTH %s" % tid)
        r = self.auth(c, None, trace_id="missing")
        self.assertEqual(401, r.get("code"), r)
        self.assert_open(c, "after AUTH without a token")
        # A valid one still works afterwards.
        exp2 = int(time.time()) + 7200
        r = self.auth(c, self.token("alice", exp2), trace_id="good")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual({"tokenExpiresAt": exp2}, r.get("data"), r)


# ============================================================================
# f. re-validation (mode jwt + auth service)


class RevalidationCase(AuthCase):
    """Combined mode (jwt + re-validation every 1000 ms); no tests here."""

    GW = "gwf"
    BATCH = 50
    WORKERS = 2

    def setUp(self):
        super().setUp()
        self.svc = self.auth_service()
        self.gw = self.gateway(self.GW, jwt_args() + service_args(
            timeout_ms=1000, interval_ms=1000, batch=self.BATCH), workers=self.WORKERS)

    def open_users(self, users):
        """One connection per entry of users; each with its own token (jti),
        valid in the service's table for its user."""
        out = []
        for i, u in enumerate(users):
            tok = mint_jwt(SECRET, u, name="User " + u, jti="j-%s-%d" % (u, i))
            self.svc.set(tok, valid=True, user={"id": u, "name": "User " + u})
            c = self.connect(self.gw, tok)
            out.append((u, tok, c))
        return out

    def wait_all_revalidated(self, conns, start=0, timeout=8.0):
        """Every connection was re-validated (and answered) once from request
        index `start` on; returns {conn id: (request, item)}."""
        pending = {c.conn_id for _, _, c in conns}
        found = {}

        def check():
            for r in self.svc.requests("revalidate", start=start):
                if not r.answered:
                    continue
                for it in r.items:
                    cid = it.get("conn")
                    if cid in pending and cid not in found:
                        found[cid] = (r, it)
            return len(found) == len(pending)

        ok = wait_until(check, timeout, 0.1)
        self.assertTrue(ok, "not every connection re-validated within %.0f s: missing %r; "
                            "requests %r" % (timeout, sorted(pending - set(found)),
                                             self.svc.requests()[-5:]))
        return found


class RevalidationTest(RevalidationCase):

    def test_revalidation_closes_a_user_the_service_no_longer_accepts(self):
        fillers = ["u%02d" % i for i in range(14)]
        conns = self.open_users(["alice", "alice", "bob"] + fillers)
        self.assertEqual(0, self.svc.count_requests("handshake"),
                         "mode jwt asked the service at the handshake")
        found = self.wait_all_revalidated(conns)
        for user, tok, c in conns:
            req, item = found[c.conn_id]
            self.assertEqual("gwf", req.gateway, req)
            self.assertEqual(tok, item.get("token"), req)
            self.assertEqual(user, item.get("user"), req)
            self.assertEqual(c.conn_id, item.get("conn"), req)
            self.assertEqual("127.0.0.1:%d" % c._ws.local_address[1], item.get("remote"), req)
        batches = [len(r.items) for r in self.svc.requests("revalidate")]
        self.assertGreater(max(batches), 1,
                           "%d connections, batch 50: every re-validation request had one item "
                           "(sizes %r)" % (len(conns), batches))
        self.assertLessEqual(max(batches), 50, batches)

        # The service now says alice logged out.
        for user, tok, _ in conns:
            if user == "alice":
                self.svc.set(tok, valid=False, reason="logged out")
        alice = [c for u, _, c in conns if u == "alice"]
        others = [c for u, _, c in conns if u != "alice"]
        for c in alice:
            self.expect_close(c, 4006, timeout=6.0, reason="logged out", label="alice")
        for c in others:
            self.assertFalse(c.closed.is_set(), "%s closed: %r" % (c.conn_id, c.wait_closed(0)))
        self.assert_open(others[0], "bob")

    def test_results_are_matched_by_id_not_by_position(self):
        self.svc.reverse_results = True
        conns = self.open_users(["u%02d" % i for i in range(10)])
        self.wait_all_revalidated(conns)
        _, tok_bad, bad = conns[3]
        self.svc.set(tok_bad, valid=False, reason="only this one")
        start = self.svc.request_count()
        self.expect_close(bad, 4006, timeout=6.0, reason="only this one", label=bad.conn_id)
        # Two more rounds for everyone else, in reversed multi-item answers.
        self.wait_all_revalidated([t for t in conns if t[2] is not bad], start=start)
        self.wait_all_revalidated([t for t in conns if t[2] is not bad],
                                  start=self.svc.request_count())
        multi = [r for r in self.svc.requests("revalidate", start=start) if len(r.items) > 1]
        self.assertTrue(multi, "no multi-item request after the flip: the order was never tested")
        for _, _, c in conns:
            if c is not bad:
                self.assertFalse(c.closed.is_set(), "%s closed by another item's answer: %r"
                                 % (c.conn_id, c.wait_closed(0)))

    def test_combined_mode_envelope_user_becomes_the_services_object(self):
        self.res.service(self.nats.url, "svc.test.whoami",
                         lambda env, msg: {"code": 0, "data": env.get("user")})
        # A second gateway, with the route (the class's gateway has none).
        gw = self.gateway("gwf-r", jwt_args() + service_args(timeout_ms=1000, interval_ms=1000),
                          routes=EnvelopeUserTest.ROUTES)
        tok = mint_jwt(SECRET, "alice", name="Alice", jti="j-env")
        svc_user = {"id": "alice", "name": "Alice S.", "dept": "research"}
        self.svc.set(tok, valid=True, user=svc_user)
        c = self.connect(gw, tok)
        r = c.request("WHOAMI", trace_id="w-0")
        self.assertIsNotNone(r)
        self.assertEqual("alice", r["data"].get("id"), r)
        got = self.svc.wait_item(lambda q, it: q.kind == "revalidate" and it.get("conn") == c.conn_id,
                                 timeout=6.0)
        self.assertIsNotNone(got, "no re-validation of %s" % c.conn_id)
        seen = []

        def updated():
            r = c.request("WHOAMI", trace_id="w-%d" % (len(seen) + 1))
            seen.append(r)
            return r is not None and r.get("data") == svc_user

        self.assertTrue(wait_until(updated, 3.0, 0.1),
                        "envelope user not the service's object after re-validation: %r" % seen[-3:])

    def test_revalidation_naming_another_user_closes_4006(self):
        conns = self.open_users(["alice", "bob"])
        self.wait_all_revalidated(conns)
        _, tok_bob, bob = conns[1]
        self.svc.set(tok_bob, valid=True, user={"id": "mallory", "name": "Mallory"})
        self.expect_close(bob, 4006, timeout=6.0, label="bob re-validated as mallory")
        self.assert_open(conns[0][2], "alice")

    def test_revalidation_sees_the_refreshed_token(self):
        conns = self.open_users(["alice"])
        _, tok1, c = conns[0]
        tok2 = mint_jwt(SECRET, "alice", name="User alice", jti="j-refreshed")
        self.svc.set(tok2, valid=True, user={"id": "alice", "name": "User alice"})
        r = self.auth(c, tok2, trace_id="refresh")
        self.assertEqual(0, r.get("code"), r)
        got = self.svc.wait_item(lambda req, it: req.kind == "revalidate"
                                 and it.get("conn") == c.conn_id and it.get("token") == tok2,
                                 timeout=6)
        seen = [(it.get("token") == tok1, it.get("token") == tok2)
                for r in self.svc.requests("revalidate") for it in r.items]
        self.assertIsNotNone(got, "no re-validation with the refreshed token within 6 s; "
                                  "(old, new) per item: %r" % seen)


class RevalidationBatchLimitTest(RevalidationCase):
    GW = "gwf3"
    BATCH = 3
    WORKERS = 1

    def test_batches_hold_at_most_revalidate_batch_items(self):
        conns = self.open_users(["u%02d" % i for i in range(12)])
        self.wait_all_revalidated(conns)
        self.wait_all_revalidated(conns, start=self.svc.request_count())
        sizes = [len(r.items) for r in self.svc.requests("revalidate")]
        self.assertLessEqual(max(sizes), 3, "revalidate_batch = 3, request sizes %r" % sizes)
        for r in self.svc.requests("revalidate"):
            ids = [it.get("id") for it in r.items]
            self.assertEqual(len(ids), len(set(ids)), "duplicate item ids in %r" % r)


# ============================================================================
# g. the auth service goes away


class AuthServiceDownTest(AuthCase):

    def start(self, grace_ms):
        self.svc = self.auth_service()
        self.gw = self.gateway("gwg", jwt_args() + service_args(timeout_ms=500, interval_ms=1000,
                                                                batch=10, grace_ms=grace_ms))
        self.tok = mint_jwt(SECRET, "alice", name="Alice", jti="j-g")
        self.svc.set(self.tok, valid=True, user={"id": "alice", "name": "Alice"})
        c = self.connect(self.gw, self.tok)
        return c

    def wait_valid_answer(self, c, timeout=6.0):
        got = self.svc.wait_item(lambda req, it: req.kind == "revalidate"
                                 and it.get("conn") == c.conn_id, timeout=timeout)
        self.assertIsNotNone(got, "no re-validation of %s within %.0f s" % (c.conn_id, timeout))
        return got[0]

    def test_grace_keeps_connections_then_closes_4007(self):
        c = self.start(grace_ms=2000)
        req = self.wait_valid_answer(c)
        # Gone right after a valid answer: nobody listens any more.
        self.svc.stop()
        t_valid = req.t_answered
        t_stop = time.monotonic()
        self.assertLess(t_stop - t_valid, 0.5, "stopping took too long to make the test exact")
        time.sleep(max(0.0, t_valid + 1.2 - time.monotonic()))
        self.assert_open(c, "1.2 s after the last valid answer (grace 2 s)")
        time.sleep(max(0.0, t_valid + 1.7 - time.monotonic()))
        self.assertFalse(c.closed.is_set(), "closed within the grace: %r" % (c.wait_closed(0),))
        self.expect_close(c, 4007, timeout=t_valid + 8.0 - time.monotonic(),
                          label="service gone for longer than the grace")

    def test_service_back_within_the_grace_keeps_the_connection(self):
        c = self.start(grace_ms=3000)
        req = self.wait_valid_answer(c)
        self.svc.stop()
        t_valid = req.t_answered
        time.sleep(max(0.0, t_valid + 1.5 - time.monotonic()))
        self.svc.restart()
        start = self.svc.request_count()
        got = self.svc.wait_item(lambda r, it: r.kind == "revalidate" and it.get("conn") == c.conn_id,
                                 timeout=4.0, start=start)
        self.assertIsNotNone(got, "no re-validation after the service came back")
        time.sleep(max(0.0, t_valid + 5.0 - time.monotonic()))
        self.assert_open(c, "service back within the grace, 5 s after the outage began")

    def test_answer_without_a_result_for_the_item_counts_as_no_answer(self):
        c = self.start(grace_ms=0)
        self.wait_valid_answer(c)
        self.svc.set(self.tok, AuthService.OMIT)
        self.expect_close(c, 4007, timeout=6.0, label="grace 0, results missing")

    def test_no_grace_closes_4007_at_the_first_failed_revalidation(self):
        c = self.start(grace_ms=0)
        self.wait_valid_answer(c)
        self.svc.go_silent()
        t_silent = time.monotonic()
        start = self.svc.request_count()
        self.expect_close(c, 4007, timeout=1.0 + 0.5 + 4.0, label="grace 0, service silent")
        unanswered = [r for r in self.svc.requests("revalidate", start=start) if not r.answered]
        self.assertTrue(unanswered, "closed 4007 without a re-validation the service left "
                                    "unanswered")
        self.assertGreaterEqual(unanswered[0].t, t_silent)


# ============================================================================
# h. revocation across two gateways


class RevocationTest(AuthCase):

    def setUp(self):
        super().setUp()
        self.gwa = self.gateway("gwh1", jwt_args())
        self.gwb = self.gateway("gwh2", jwt_args())

    def revoke(self, **payload):
        self.pub.publish("wsgw.ctl.revoke", payload)
        return time.monotonic()

    def test_revoke_user_closes_on_every_gateway_and_refuses_the_token(self):
        now = int(time.time())
        t1 = mint_jwt(SECRET, "alice", name="Alice", iat=now - 5, jti="j-1")
        tb = mint_jwt(SECRET, "bob", name="Bob", iat=now - 5, jti="j-b")
        a1 = self.connect(self.gwa, t1)
        a2 = self.connect(self.gwb, t1)
        b1 = self.connect(self.gwa, tb)
        b2 = self.connect(self.gwb, tb)

        t0 = self.revoke(user="alice", reason="password changed")
        for c in (a1, a2):
            self.expect_close(c, 4005, timeout=5.0, reason="password changed", label=c.conn_id)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 2.0, "revocation took %.2f s to close both connections" % elapsed)
        for c in (b1, b2):
            self.assert_open(c, "bob after alice's revocation")

        # The same token is refused by both gateways.
        for gw in (self.gwa, self.gwb):
            res = self.refused(gw, token=t1)
            self.assert_refused(res, 401, "revoked")
        # A token issued after the revocation second is accepted.
        t_after = int(time.time()) + 1
        self.sleep_until_wall(t_after + 0.05)
        t2 = mint_jwt(SECRET, "alice", name="Alice", iat=int(time.time()), jti="j-2")
        for gw in (self.gwa, self.gwb):
            c = self.connect(gw, t2)
            self.assertEqual("alice", c.welcome["data"]["userId"])
            self.assertTrue(c.health())

    def test_revoke_user_refuses_tokens_without_iat_and_older_refreshes(self):
        now = int(time.time())
        t_old = mint_jwt(SECRET, "alice", name="Alice", iat=now - 5, jti="j-old")
        t_noiat = mint_jwt(SECRET, "alice", name="Alice", iat=False, jti="j-noiat")
        self.revoke(user="alice")
        # The revocation is applied when a handshake with a token issued
        # before it is refused (bounded wait: the control message is async).
        self.assertTrue(wait_until(lambda: self.refused(self.gwa, token=t_old).status == 401,
                                   5.0, 0.1), "revocation never applied on gwh1")
        self.assert_refused(self.refused(self.gwa, token=t_old), 401, "revoked")
        # §6.4: a token without an issue time matches for the whole ttlS.
        self.assert_refused(self.refused(self.gwa, token=t_noiat), 401, "revoked")
        # A connection opened with a later token cannot AUTH back to the old one.
        self.sleep_until_wall(int(time.time()) + 1.05)
        t_new = mint_jwt(SECRET, "alice", name="Alice", iat=int(time.time()), jti="j-new")
        c = self.connect(self.gwa, t_new)
        r = self.auth(c, t_old, trace_id="auth-old")
        self.assertEqual(401, r.get("code"), r)
        self.assert_open(c, "after AUTH with a revoked token")

    def test_revoke_token_id_closes_only_that_token(self):
        now = int(time.time())
        t2 = mint_jwt(SECRET, "alice", name="Alice", iat=now, jti="j-2")
        t3 = mint_jwt(SECRET, "alice", name="Alice", iat=now, jti="j-3")
        a2 = [self.connect(self.gwa, t2), self.connect(self.gwb, t2)]
        a3 = [self.connect(self.gwa, t3), self.connect(self.gwb, t3)]

        t0 = self.revoke(tokenId="j-2", reason="token leaked")
        for c in a2:
            self.expect_close(c, 4005, timeout=5.0, reason="token leaked", label=c.conn_id)
        self.assertLess(time.monotonic() - t0, 2.0)
        for c in a3:
            self.assert_open(c, "the user's other token")

        for gw in (self.gwa, self.gwb):
            self.assert_refused(self.refused(gw, token=t2), 401, "revoked")
            c = self.connect(gw, t3)
            self.assertEqual("alice", c.welcome["data"]["userId"])
        # AUTH with the revoked token: 401, the connection stays.
        r = self.auth(a3[0], t2, trace_id="auth-revoked")
        self.assertEqual(401, r.get("code"), r)
        self.assert_open(a3[0], "after AUTH with a revoked token")

    def test_revocation_ttl(self):
        t4 = mint_jwt(SECRET, "carol", name="Carol", jti="j-4")
        c = self.connect(self.gwa, t4)
        self.revoke(tokenId="j-4", ttlS=2)
        self.expect_close(c, 4005, timeout=5.0)
        # Within the first second of a 2 s revocation: refused.
        self.assert_refused(self.refused(self.gwa, token=t4), 401, "revoked")

        def accepted():
            return self.refused(self.gwa, token=t4).status == 101

        self.assertTrue(wait_until(accepted, 6.0, 0.25),
                        "token still refused 6 s after a revocation with ttlS 2")


# ============================================================================
# mode service: expiry, ttlMs and revocation from the service's answers


class ServiceLifecycleTest(AuthCase):

    def start(self, interval_ms=None, warning_s=3):
        self.svc = self.auth_service()
        self.gw = self.gateway("gws", ["--auth.mode=service", "--auth.expiry_warning_s=%d" % warning_s]
                               + service_args(timeout_ms=1000, interval_ms=interval_ms, batch=10))

    def test_service_expiry_warns_and_closes_4004(self):
        # No JWT leeway in mode service (the default 30 s must not apply).
        self.start()
        exp = int(time.time()) + 3
        self.svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"}, expiresAt=exp)
        c = self.connect(self.gw, "tok-a")
        self.assertEqual(exp, c.welcome["data"].get("tokenExpiresAt"), c.welcome)
        warn, _ = self.expect_message(c, "TOKEN_EXPIRING", timeout=exp - time.time() + 1)
        self.assertEqual(exp, warn["data"].get("expiresAt"), warn)
        self.sleep_until_wall(exp - 0.5)
        self.assertFalse(c.closed.is_set(), "closed before expiresAt: %r" % (c.wait_closed(0),))
        self.expect_close(c, 4004, timeout=exp - time.time() + 4, label="service expiresAt")

    def test_ttl_ms_drives_revalidation_when_the_interval_is_off(self):
        self.start(interval_ms=0)
        self.svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"}, ttlMs=1000)
        c = self.connect(self.gw, "tok-a")
        got = self.svc.wait_item(lambda r, it: r.kind == "revalidate" and it.get("conn") == c.conn_id,
                                 timeout=5.0)
        self.assertIsNotNone(got, "ttlMs 1000 with the interval off: no re-validation within 5 s; "
                                  "saw %r" % self.svc.requests())
        self.svc.set("tok-a", valid=False, reason="ttl over")
        self.expect_close(c, 4006, timeout=6.0, reason="ttl over")

    def test_ttl_ms_shorter_than_the_interval_comes_first(self):
        self.start(interval_ms=60000)
        self.svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"}, ttlMs=1000)
        c = self.connect(self.gw, "tok-a")
        got = self.svc.wait_item(lambda r, it: r.kind == "revalidate" and it.get("conn") == c.conn_id,
                                 timeout=5.0)
        self.assertIsNotNone(got, "ttlMs 1000, interval 60 s: no re-validation within 5 s")

    def test_ttl_ms_below_1000_is_taken_as_1000(self):
        self.start(interval_ms=0)
        self.svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"}, ttlMs=100)
        c = self.connect(self.gw, "tok-a")
        t0 = time.monotonic()
        time.sleep(3.0)
        n = len([r for r in self.svc.requests("revalidate") if r.t <= t0 + 3.0])
        self.assertGreaterEqual(n, 1, "ttlMs 100: never re-validated in 3 s")
        self.assertLessEqual(n, 4, "ttlMs 100 (at least 1000): %d re-validations in 3 s" % n)
        self.assert_open(c)

    def test_no_ttl_and_no_interval_means_no_revalidation(self):
        self.start(interval_ms=0)
        self.svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"})
        c = self.connect(self.gw, "tok-a")
        time.sleep(2.5)
        self.assertEqual(0, self.svc.count_requests("revalidate"), self.svc.requests())
        self.assert_open(c)

    def test_revalidation_updates_the_expiry(self):
        self.start(interval_ms=1000)
        self.svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"},
                     expiresAt=int(time.time()) + 3600)
        c = self.connect(self.gw, "tok-a")
        exp = int(time.time()) + 5
        self.svc.update("tok-a", expiresAt=exp)
        warn, _ = self.expect_message(c, "TOKEN_EXPIRING", timeout=exp - time.time() + 1,
                                      label="expiry shortened by re-validation")
        self.assertEqual(exp, warn["data"].get("expiresAt"), warn)
        self.expect_close(c, 4004, timeout=exp - time.time() + 4)

    def test_revocation_matches_the_services_token_id_and_issued_at(self):
        self.start()
        now = int(time.time())
        alice = {"id": "alice", "name": "Alice"}
        self.svc.set("tok-1", valid=True, user=alice, tokenId="svc-t1", issuedAt=now - 10)
        self.svc.set("tok-2", valid=True, user=alice, tokenId="svc-t2", issuedAt=now - 10)
        c1 = self.connect(self.gw, "tok-1")
        c2 = self.connect(self.gw, "tok-2")
        self.pub.publish("wsgw.ctl.revoke", {"tokenId": "svc-t1", "reason": "svc revoke"})
        self.expect_close(c1, 4005, timeout=5.0, reason="svc revoke")
        self.assert_open(c2, "the other service token")
        # The service still says valid; the gateway refuses the revoked id.
        self.assert_refused(self.refused(self.gw, token="tok-1"), 401, "revoked")

        self.pub.publish("wsgw.ctl.revoke", {"user": "alice"})
        self.expect_close(c2, 4005, timeout=5.0)
        self.assert_refused(self.refused(self.gw, token="tok-2"), 401, "revoked")
        # issuedAt after the revocation second: accepted.
        self.sleep_until_wall(int(time.time()) + 1.05)
        self.svc.set("tok-3", valid=True, user=alice, tokenId="svc-t3", issuedAt=int(time.time()))
        c3 = self.connect(self.gw, "tok-3")
        self.assertEqual("alice", c3.welcome["data"]["userId"])


class NoneModeAuthTest(AuthCase):

    def test_auth_in_mode_none_succeeds_and_changes_nothing(self):
        gw = self.gateway("gwn", [])
        c = self.res.ws(gw, "?user=alice&name=Alice")
        r = self.auth(c, "whatever-token", trace_id="none-auth")
        self.assertEqual(0, r.get("code"), r)
        self.assert_open(c, "after AUTH in mode none")


# ============================================================================
# i. refresh in mode service


class ServiceRefreshTest(AuthCase):

    def setUp(self):
        super().setUp()
        self.svc = self.auth_service()
        self.gw = self.gateway("gwi", ["--auth.mode=service"] + service_args(timeout_ms=500))

    def test_refresh_asks_the_service(self):
        now = int(time.time())
        self.svc.set("tok-a1", valid=True, user={"id": "alice", "name": "Alice"},
                     expiresAt=now + 3600)
        self.svc.set("tok-a2", valid=True, user={"id": "alice", "name": "Alice"},
                     expiresAt=now + 7200, tokenId="t-2", issuedAt=now)
        self.svc.set("tok-a3", valid=True, user={"id": "alice", "name": "Alice"})
        self.svc.set("tok-b", valid=True, user={"id": "bob", "name": "Bob"})
        self.svc.set("tok-x", valid=False, reason="session ended")
        c = self.connect(self.gw, "tok-a1")
        self.assertEqual(now + 3600, c.welcome["data"].get("tokenExpiresAt"))

        start = self.svc.request_count()
        r = self.auth(c, "tok-a2", trace_id="r-1")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual({"tokenExpiresAt": now + 7200}, r.get("data"), r)
        reqs = self.svc.requests(start=start)
        self.assertEqual(["refresh"], [q.kind for q in reqs], reqs)
        item = reqs[0].items[0]
        self.assertEqual("tok-a2", item.get("token"), reqs[0])
        self.assertEqual("alice", item.get("user"), reqs[0])
        self.assertEqual(c.conn_id, item.get("conn"), reqs[0])
        self.assertEqual("127.0.0.1:%d" % c._ws.local_address[1], item.get("remote"), reqs[0])
        self.assertEqual("gwi", reqs[0].gateway)

        # Without expiresAt: null.
        r = self.auth(c, "tok-a3", trace_id="r-2")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual({"tokenExpiresAt": None}, r.get("data"), r)

        # Another user: 409.
        r = self.auth(c, "tok-b", trace_id="r-3")
        self.assertEqual(409, r.get("code"), r)
        self.assert_open(c, "after 409")

        # Refused: 401.
        r = self.auth(c, "tok-x", trace_id="r-4")
        self.assertEqual(401, r.get("code"), r)
        self.assert_open(c, "after 401")

    def test_silent_service_is_502_and_the_connection_stays(self):
        self.svc.set("tok-a1", valid=True, user={"id": "alice", "name": "Alice"})
        self.svc.set("tok-a2", valid=True, user={"id": "alice", "name": "Alice"})
        c = self.connect(self.gw, "tok-a1")
        self.svc.go_silent()
        t0 = time.monotonic()
        r = self.auth(c, "tok-a2", trace_id="r-silent", timeout=8)
        self.assertEqual(502, r.get("code"), r)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3, "502 before the 500 ms timeout")
        self.assert_open(c, "after 502")
        self.assertEqual(1, self.svc.count_requests("refresh"))

        self.svc.go_silent(False)
        self.svc.stop()
        r = self.auth(c, "tok-a2", trace_id="r-stopped", timeout=8)
        self.assertEqual(502, r.get("code"), r)
        self.assert_open(c, "after 502 (no responders)")

        self.svc.restart()
        r = self.auth(c, "tok-a2", trace_id="r-back")
        self.assertEqual(0, r.get("code"), r)


if __name__ == "__main__":
    unittest.main()
