#!/usr/bin/python3
"""wsgw <-> NATS on one real nats-server: pushes, groups, control, upstream
requests and the subscriptions a gateway holds (docs/PROTOCOL.md §6).

Run with Debian's interpreter (python3-websockets 10.4):
  WSGW_BINARY=/path/to/wsgw /usr/bin/python3 tests/integration/test_nats_delivery.py -v

Every test starts its own nats-server (OS-picked ports) and its own gateway
(2 workers, auth.mode none, --server.port=0), so tests are independent and
may run in parallel. Before publishing, each test waits (bounded) until the
gateway's subscription is visible in the server's /connz: subscriptions are
asynchronous.
"""

import os
import re
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nats_helpers import (  # noqa: E402
    IO_TIMEOUT, SILENCE, NatsTestCase, push_payload, wait_gateway_subjects)


class GatewayCase(NatsTestCase):
    """One nats-server and one gateway `gwd` per test (no tests here)."""

    GW = "gwd"
    ROUTES = ()
    EXTRA_ARGS = ()

    def setUp(self):
        super().setUp()
        self.nats = self.res.nats_server("n")
        self.gw = self.res.gateway(self.GW, self.nats.url, routes=self.ROUTES,
                                   extra_args=self.EXTRA_ARGS)
        self.wait_gateway_ready([self.nats], self.gw)
        self.pub = self.res.nats_client(self.nats.url, name="publisher")

    def connect(self, query):
        return self.res.ws(self.gw, query)

    def wait_sub(self, subject, present=True):
        self.wait_subject([self.nats], self.gw, subject, present)

    def ctl(self, verb, **payload):
        self.pub.publish("wsgw.ctl." + verb, payload)



class DeliveryTest(GatewayCase):
    """Pushes, groups and control (§6.3, §6.4)."""

    # 1 ----------------------------------------------------------------------
    def test_user_push_reaches_every_connection_of_the_user_once(self):
        alice = [self.connect("?user=alice") for _ in range(3)]
        bob = self.connect("?user=bob")
        self.wait_sub("wsgw.user.alice")
        self.wait_sub("wsgw.user.bob")

        payload, tid = push_payload(text="for alice")
        self.pub.publish("wsgw.user.alice", payload)
        for i, c in enumerate(alice):
            m = self.expect_push(c, tid, label="alice#%d" % i)
            self.assertEqual({"command": "NOTIFY", "traceId": tid, "data": {"text": "for alice"},
                              "code": 0, "message": "success"}, m)
        self.expect_silence(alice + [bob], label="after one push to alice (duplicates or bob)")

        # And bob's own subject reaches only bob.
        payload, tid = push_payload(text="for bob")
        self.pub.publish("wsgw.user.bob", payload)
        self.expect_push(bob, tid, label="bob")
        self.expect_silence(alice + [bob], label="after one push to bob")

    # 2 ----------------------------------------------------------------------
    def test_user_id_with_special_characters_uses_its_encoded_subject(self):
        odd = self.connect("?user=a.b%2Ac")
        self.assertEqual("a.b*c", odd.welcome["data"]["userId"])
        plain = self.connect("?user=a")  # a neighbour whose subject is a prefix
        self.wait_sub("wsgw.user.a%2Eb%2Ac")
        self.wait_sub("wsgw.user.a")
        ok, subs = wait_gateway_subjects([self.nats], self.gw, lambda s: True, 2)
        for s in subs or []:
            self.assertFalse(s.startswith("wsgw.user.a.") or s == "wsgw.user.a.b*c",
                             "raw (unencoded) user subject subscribed: %r" % subs)

        # Subjects that a naive (unencoded) subscription would have matched.
        for subject in ("wsgw.user.a.b", "wsgw.user.a.b.c", "wsgw.user.a%2Eb", "wsgw.user.a%2eb%2ac",
                        "wsgw.user.a%2Eb%2Ac.x"):
            payload, _ = push_payload(wrong=subject)
            self.pub.publish(subject, payload)
        self.expect_silence([odd, plain], label="pushes on subjects other than the encoded one")

        payload, tid = push_payload(text="encoded")
        self.pub.publish("wsgw.user.a%2Eb%2Ac", payload)
        self.expect_push(odd, tid, label="a.b*c")
        self.expect_silence([odd, plain], label="after the encoded push")

    # 3 ----------------------------------------------------------------------
    def test_conn_push_reaches_exactly_that_connection(self):
        c1 = self.connect("?user=alice")
        c2 = self.connect("?user=alice")
        other = self.connect("?user=bob")
        for c in (c1, c2, other):
            self.assertRegex(c.conn_id, r"^%s\.\d+$" % self.GW)
        self.assertNotEqual(c1.conn_id, c2.conn_id)

        for target, rest in ((c1, [c2, other]), (c2, [c1, other])):
            payload, tid = push_payload(to=target.conn_id)
            self.pub.publish("wsgw.conn." + target.conn_id, payload)
            self.expect_push(target, tid, label=target.conn_id)
            self.expect_silence([target] + rest, label="after a push to %s" % target.conn_id)

        # A connection id nobody holds reaches nobody.
        payload, _ = push_payload(to="nobody")
        self.pub.publish("wsgw.conn.%s.999999" % self.GW, payload)
        self.expect_silence([c1, c2, other], label="push to an unknown connection id")

    # 4 ----------------------------------------------------------------------
    def test_groups_join_leave_and_empty_group(self):
        a1 = self.connect("?user=alice")
        a2 = self.connect("?user=alice")
        bob = self.connect("?user=bob")
        everyone = [a1, a2, bob]

        # Join by user: both of alice's connections, not bob.
        self.ctl("join", group="g1", user="alice")
        self.wait_sub("wsgw.group.g1")
        # The first worker's join made the subscription; a HEALTH round trip
        # on each connection makes sure its worker has run the (earlier
        # queued) join too.
        for c in everyone:
            self.assertTrue(c.health(), "HEALTH after join")
        payload, tid = push_payload(group="g1")
        self.pub.publish("wsgw.group.g1", payload)
        self.expect_push(a1, tid, label="alice#1 in g1")
        self.expect_push(a2, tid, label="alice#2 in g1")
        self.expect_silence(everyone, label="after a push to g1")

        # Join by connection: only that one.
        self.ctl("join", group="g2", conn=a2.conn_id)
        self.wait_sub("wsgw.group.g2")
        payload, tid = push_payload(group="g2")
        self.pub.publish("wsgw.group.g2", payload)
        self.expect_push(a2, tid, label="alice#2 in g2")
        self.expect_silence(everyone, label="after a push to g2 (only %s joined)" % a2.conn_id)

        # Leave: g1 no longer reaches alice, and the gateway drops the subject.
        self.ctl("leave", group="g1", user="alice")
        self.wait_sub("wsgw.group.g1", present=False)
        payload, _ = push_payload(group="g1 after leave")
        self.pub.publish("wsgw.group.g1", payload)
        self.expect_silence(everyone, label="push to g1 after everyone left")

        # g2 still reaches its member.
        payload, tid = push_payload(group="g2 again")
        self.pub.publish("wsgw.group.g2", payload)
        self.expect_push(a2, tid, label="alice#2 still in g2")

        # A group nobody joined reaches nobody.
        payload, _ = push_payload(group="nobody")
        self.pub.publish("wsgw.group.nobody-joined", payload)
        self.expect_silence(everyone, label="push to a group nobody joined")

    # 5 ----------------------------------------------------------------------
    def test_broadcast_reaches_every_connection(self):
        clients = [self.connect("?user=" + u) for u in ("alice", "bob", "carol")]
        payload, tid = push_payload(text="everyone")
        self.pub.publish("wsgw.all", payload)
        for c in clients:
            self.expect_push(c, tid, label=c.welcome["data"]["userId"])
        self.expect_silence(clients, label="after one broadcast")

    # 6 ----------------------------------------------------------------------
    def test_kick_by_user_closes_all_of_its_connections(self):
        a1 = self.connect("?user=alice")
        a2 = self.connect("?user=alice")
        bob = self.connect("?user=bob")
        self.ctl("kick", user="alice", reason="policy says bye")
        for c in (a1, a2):
            closed = c.wait_closed(IO_TIMEOUT)
            self.assertIsNotNone(closed, "%s not closed after kick" % c.conn_id)
            self.assertEqual((4003, "policy says bye"), closed, c.conn_id)
        self.assertFalse(bob.closed.is_set(), "bob was closed by a kick of alice")
        self.assertTrue(bob.health(), "bob does not get HEALTH answered after alice's kick")

    def test_kick_by_conn_closes_only_that_connection(self):
        b1 = self.connect("?user=bob")
        b2 = self.connect("?user=bob")
        self.ctl("kick", conn=b1.conn_id, reason="just this one")
        self.assertEqual((4003, "just this one"), b1.wait_closed(IO_TIMEOUT), b1.conn_id)
        self.assertFalse(b2.closed.is_set(), "kick by conn closed the user's other connection")
        self.assertTrue(b2.health(), "the other connection stopped answering")
        # A kick naming another gateway's connection with the same number is not ours.
        self.ctl("kick", conn="othergw." + b2.conn_id.rsplit(".", 1)[1], reason="not you")
        self.expect_silence([b2], label="kick of another gateway's connection id")
        self.assertFalse(b2.closed.is_set(), "kicked by a connection id of another gateway")

    # 7 ----------------------------------------------------------------------
    def test_bad_push_payloads_reach_nobody_and_the_gateway_keeps_serving(self):
        alice = self.connect("?user=alice")
        bob = self.connect("?user=bob")
        self.wait_sub("wsgw.user.alice")
        bad = [b"not json", b"", b"[1,2,3]", b'"NOTIFY"', b'{"data":{"x":1}}',
               b'{"command":""}', b'{"command":"has space"}', b'{"command":7}',
               b'{"command":"NOTIFY","traceId":5}', b'{"command":"NOTIFY","code":"zero"}',
               b'{"command":"NOTIFY"', b"\xff\xfe{}"]
        lines_before = self.gw.line_count()
        for payload in bad:
            for subject in ("wsgw.user.alice", "wsgw.all", "wsgw.conn." + alice.conn_id):
                self.pub.pub(subject, payload)
        self.assertTrue(self.pub.flush(), "publisher lost")
        self.expect_silence([alice, bob], label="bad pushes")

        self.assertTrue(self.gw.alive(), "gateway died on bad pushes:\n" + self.gw.tail())
        self.assertTrue(alice.health(), "HEALTH no longer answered after bad pushes")
        self.assertTrue(bob.health(), "HEALTH no longer answered after bad pushes")
        payload, tid = push_payload(text="valid")
        self.pub.publish("wsgw.all", payload)
        self.expect_push(alice, tid, label="alice after bad pushes")
        self.expect_push(bob, tid, label="bob after bad pushes")
        # §6.3: "dropped, counted and logged".
        logged = self.gw.wait_for(lambda o: o.get("event") == "bad_push", 2.0, start=lines_before)
        self.assertIsNotNone(logged, "no bad_push log line for dropped pushes")


ECHO_ROUTES = (
    {"command": "ECHO", "subject": "svc.test.echo", "mode": "request", "timeout_ms": 2000},
    {"command": "NOBODY", "subject": "svc.test.nobody", "mode": "request", "timeout_ms": 5000},
    {"command": "SLOW", "subject": "svc.test.slow", "mode": "request", "timeout_ms": 300},
    {"command": "TRACK", "subject": "svc.test.track", "mode": "publish", "ack": True},
    {"command": "FIRE", "subject": "svc.test.fire", "mode": "publish"},
)


class UpstreamTest(GatewayCase):
    """Commands to services (§6.2) over routes from a config file."""

    ROUTES = ECHO_ROUTES

    def echo_service(self):
        return self.res.service(self.nats.url, "svc.test.echo",
                                lambda env, msg: {"code": 0, "data": env["data"]})

    # 8 ----------------------------------------------------------------------
    def test_request_mode_round_trip_and_envelope(self):
        svc = self.echo_service()
        c = self.connect("?user=alice&name=Alice")
        r = c.request("ECHO", data={"x": 1}, trace_id="t-1")
        self.assertIsNotNone(r, "no reply to ECHO within %.0f s" % IO_TIMEOUT)
        self.assertEqual({"command": "ECHO", "traceId": "t-1", "data": {"x": 1},
                          "code": 0, "message": "success"}, r)

        got = svc.wait_received(1)
        self.assertIsNotNone(got, "service received nothing")
        env, msg = got[0]
        self.assertIsNotNone(env, "envelope is not JSON: %r" % msg.payload)
        self.assertEqual("ECHO", env.get("command"))
        self.assertEqual("t-1", env.get("traceId"))
        self.assertEqual({"id": "alice", "name": "Alice"}, env.get("user"))
        self.assertEqual(c.conn_id, env.get("conn"))
        self.assertEqual(self.GW, env.get("gateway"))
        self.assertEqual({"x": 1}, env.get("data"))
        # The reply goes to the worker's inbox (§6.5).
        self.assertIsNotNone(msg.reply, "request published without a reply subject")
        self.assertRegex(msg.reply, r"^_INBOX\.wsgw\.%s\.[01]\.\d+$" % self.GW)

    def test_service_reply_fields_are_passed_through(self):
        self.res.service(self.nats.url, "svc.test.echo",
                         lambda env, msg: {"code": 4242, "message": "custom", "data": [1, "two"]})
        c = self.connect("?user=alice")
        r = c.request("ECHO", data={}, trace_id="t-2")
        self.assertEqual({"command": "ECHO", "traceId": "t-2", "data": [1, "two"],
                          "code": 4242, "message": "custom"}, r)

    # 9 ----------------------------------------------------------------------
    def test_no_responders_is_503_at_once(self):
        c = self.connect("?user=alice")
        t0 = time.monotonic()
        r = c.request("NOBODY", data={}, trace_id="t-nr")
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(r, "no answer to a request nobody listens to")
        self.assertEqual(503, r.get("code"), r)
        self.assertEqual("t-nr", r.get("traceId"))
        self.assertLess(elapsed, 1.5, "503 took %.2f s; route timeout is 5 s" % elapsed)

    # 10 ---------------------------------------------------------------------
    def test_timeout_is_504_after_the_route_timeout(self):
        svc = self.res.service(self.nats.url, "svc.test.slow", lambda env, msg: None)
        c = self.connect("?user=alice")
        t0 = time.monotonic()
        r = c.request("SLOW", data={}, trace_id="t-slow", timeout=5)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(r, "no answer within 5 s to a request with timeout_ms=300")
        self.assertEqual(504, r.get("code"), r)
        self.assertEqual("t-slow", r.get("traceId"))
        # The gateway's timing wheel (heartbeat.tick_ms = 100) cannot fire in
        # fewer than 2 ticks for 300 ms; that the timeout never fires early is
        # RequestTimeoutPrecisionTest's business.
        self.assertGreaterEqual(elapsed, 0.15, "504 after %.2f s: it did not wait" % elapsed)
        self.assertLess(elapsed, 2.0, "504 after %.2f s; route timeout is 300 ms" % elapsed)
        self.assertIsNotNone(svc.wait_received(1, 1), "the slow service never saw the request")
        # HEALTH still works and nothing else arrives (no late second answer).
        self.assertTrue(c.health())
        self.expect_silence([c], label="after the 504")

    # 11 ---------------------------------------------------------------------
    def test_publish_mode_with_ack(self):
        svc = self.res.service(self.nats.url, "svc.test.track")
        c = self.connect("?user=alice")
        r = c.request("TRACK", data={"page": "/home"}, trace_id="t-track")
        self.assertIsNotNone(r, "no ack for a publish route with ack = true")
        self.assertEqual(0, r.get("code"), r)
        self.assertEqual("t-track", r.get("traceId"))
        got = svc.wait_received(1)
        self.assertIsNotNone(got, "the service did not receive the published envelope")
        env, msg = got[0]
        self.assertEqual("TRACK", env["command"])
        self.assertEqual("t-track", env["traceId"])
        self.assertEqual({"page": "/home"}, env["data"])
        self.assertEqual(c.conn_id, env["conn"])
        self.assertIsNone(msg.reply, "publish mode sent a reply subject")

    def test_publish_mode_without_ack_answers_nothing(self):
        svc = self.res.service(self.nats.url, "svc.test.fire")
        c = self.connect("?user=alice")
        c.send({"command": "FIRE", "traceId": "t-fire", "data": {"n": 1}})
        got = svc.wait_received(1)
        self.assertIsNotNone(got, "the service did not receive the published envelope")
        self.assertEqual("t-fire", got[0][0]["traceId"])
        self.expect_silence([c], window=0.5, label="publish route without ack")

    # 12 ---------------------------------------------------------------------
    def test_generated_trace_id(self):
        svc = self.echo_service()
        c = self.connect("?user=alice")
        c.send({"command": "ECHO", "data": {"y": 2}})
        r, skipped = c.recv_until(lambda m: m.get("command") == "ECHO")
        self.assertIsNotNone(r, "no reply; got %r" % skipped)
        self.assertEqual(0, r.get("code"), r)
        tid = r.get("traceId")
        self.assertIsInstance(tid, str)
        self.assertTrue(tid, "reply carries an empty traceId")
        self.assertRegex(tid, r"^%s:\d+$" % re.escape(c.conn_id))  # §6.2: <connId>:<n>
        got = svc.wait_received(1)
        self.assertIsNotNone(got, "the service received nothing")
        self.assertEqual(tid, got[0][0]["traceId"], "service saw another traceId than the client")

        # A second one gets another id.
        c.send({"command": "ECHO", "data": {"y": 3}})
        r2, _ = c.recv_until(lambda m: m.get("command") == "ECHO")
        self.assertIsNotNone(r2)
        self.assertNotEqual(tid, r2.get("traceId"))


class RequestTimeoutPrecisionTest(GatewayCase):
    """A reply that comes within the route's timeout_ms reaches the client
    (§6.2: "no reply in time -> 504"), whatever the phase of the gateway's
    timer at the moment the request arrived.

    heartbeat.tick_ms = 500 and timeout_ms = 1000; the service answers each
    request 800 ms after it gets it. Five requests are sent 100 ms apart, so
    they arrive at five different points of a 500 ms tick: a timer that
    rounds the timeout down to tick boundaries (fires after 500..1000 ms)
    answers some of them 504, one that never fires early answers none."""

    ROUTES = ({"command": "LATE", "subject": "svc.test.late", "mode": "request",
               "timeout_ms": 1000},)
    EXTRA_ARGS = ("--heartbeat.tick_ms=500",)
    REPLY_AFTER = 0.8

    def test_reply_within_the_timeout_is_not_answered_504(self):
        def answer_later(env, msg):
            t = threading.Timer(self.REPLY_AFTER, svc.client.pub, (msg.reply, {"code": 0, "data": env["data"]}))
            t.daemon = True
            t.start()
            return None

        svc = self.res.service(self.nats.url, "svc.test.late", answer_later)
        c = self.connect("?user=alice")
        sent = {}
        for k in range(5):
            tid = "t-late-%d" % k
            sent[tid] = time.monotonic()
            c.send({"command": "LATE", "traceId": tid, "data": {"k": k}})
            time.sleep(0.1)
        results = {}
        deadline = time.monotonic() + 5.0
        while len(results) < len(sent) and time.monotonic() < deadline:
            m = c.recv(max(0.0, deadline - time.monotonic()))
            if m is None:
                break
            if m.get("traceId") in sent and m["traceId"] not in results:
                results[m["traceId"]] = (m.get("code"), round(time.monotonic() - sent[m["traceId"]], 3))
        self.assertEqual(sorted(sent), sorted(results), "answers missing: %r" % results)
        early = {t: r for t, r in results.items() if r[0] != 0}
        self.assertEqual({}, early,
                         "replies sent %.1f s after the request, within timeout_ms = 1000, were "
                         "answered with (code, seconds after sending) %r" % (self.REPLY_AFTER, early))
        self.assertEqual(5, len(svc.received))


class SubscriptionCountTest(GatewayCase):
    """§6.5."""

    # 13 ---------------------------------------------------------------------
    def test_subscriptions_follow_users_and_groups(self):
        fixed = self.gw.fixed_subjects()
        ok, seen = wait_gateway_subjects([self.nats], self.gw, lambda s: s == fixed, 3)
        self.assertTrue(ok, "before any connection: expected exactly %r, saw %r" % (fixed, seen))

        a1 = self.connect("?user=alice")
        a2 = self.connect("?user=alice")
        bob = self.connect("?user=bob")
        self.ctl("join", group="g", user="alice")
        expected = sorted(fixed + ["wsgw.user.alice", "wsgw.user.bob", "wsgw.group.g"])
        ok, seen = wait_gateway_subjects([self.nats], self.gw, lambda s: s == expected)
        self.assertTrue(ok, "users alice (2 conns), bob and group g: expected exactly\n%r\nsaw\n%r"
                        % (expected, seen))
        # users + groups + 2 push subscriptions, ctl, one inbox per worker.
        self.assertEqual(2 + 1 + 2 + 1 + self.gw.workers, len(seen))

        bob.close()
        expected = sorted(fixed + ["wsgw.user.alice", "wsgw.group.g"])
        ok, seen = wait_gateway_subjects([self.nats], self.gw, lambda s: s == expected)
        self.assertTrue(ok, "after bob left: expected %r, saw %r" % (expected, seen))

        a1.close()
        # alice still has a connection: her subject and group stay.
        time.sleep(SILENCE)
        ok, seen = wait_gateway_subjects([self.nats], self.gw, lambda s: s == expected, 1)
        self.assertTrue(ok, "after one of alice's two connections left: expected %r, saw %r"
                        % (expected, seen))

        a2.close()
        ok, seen = wait_gateway_subjects([self.nats], self.gw, lambda s: s == fixed)
        self.assertTrue(ok, "after alice's last connection left: expected %r, saw %r"
                        % (fixed, seen))


if __name__ == "__main__":
    unittest.main()
