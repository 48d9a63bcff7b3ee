#!/usr/bin/python3
"""wsgw on a NATS cluster and through NATS outages (docs/PROTOCOL.md §6).

Run with Debian's interpreter (python3-websockets 10.4):
  WSGW_BINARY=/path/to/wsgw /usr/bin/python3 tests/integration/test_nats_cluster.py -v

Each test starts its own nats-server(s) on OS-picked loopback ports and its
own gateways, so tests are independent. Gateways reconnect quickly here
(--nats.reconnect_wait_ms=200, jitter 100) to keep the file short; every
wait is bounded.
"""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nats_helpers import (  # noqa: E402
    IO_TIMEOUT, NatsTestCase, find_gateway_node, push_payload, wait_gateway_subjects)

FAST_RECONNECT = ("--nats.reconnect_wait_ms=200", "--nats.reconnect_jitter_ms=100",
                  "--nats.connect_timeout_ms=1000")
FAILOVER_TIMEOUT = 15.0
MARKER_INTERVAL = 0.2


class ClusterCase(NatsTestCase):

    def publish_until_received(self, pub, subject, clients, timeout=FAILOVER_TIMEOUT,
                               label=""):
        """Publishes a marker push on `subject` every 200 ms until every client
        has received one (max `timeout`). Then drains: later markers may still
        be on their way. Returns the seconds it took."""
        t0 = time.monotonic()
        pending = set(range(len(clients)))
        sent = []
        for _ in range(int(timeout / MARKER_INTERVAL) + 1):
            payload, tid = push_payload(command="MARKER")
            try:
                pub.publish(subject, payload, timeout=1.0)
            except (OSError, RuntimeError):
                pass  # the publisher's own node is fine; a slow flush is retried
            sent.append(tid)
            step_end = time.monotonic() + MARKER_INTERVAL
            for i in list(pending):
                m = clients[i].recv(max(0.0, step_end - time.monotonic()))
                while m is not None:
                    if m.get("command") == "MARKER" and m.get("traceId") in sent:
                        pending.discard(i)
                        break
                    self.fail("%s: unexpected message while waiting for markers: %r" % (label, m))
            if not pending:
                break
            if time.monotonic() - t0 > timeout:
                break
        self.assertFalse(pending, "%s: no marker push on %s reached %r within %.0f s"
                         % (label, subject, [clients[i].conn_id for i in sorted(pending)],
                            timeout))
        took = time.monotonic() - t0
        for c in clients:
            leftovers = c.drain(0.4)
            for m in leftovers:
                self.assertEqual("MARKER", m.get("command"), "%s: unexpected %r" % (label, m))
        return took

    def assert_each_once(self, pub, subject, clients, n=5, label=""):
        """n distinct pushes on subject: each client gets each exactly once."""
        tids = []
        for k in range(n):
            payload, tid = push_payload(seq=k)
            pub.pub(subject, payload)
            tids.append(tid)
        self.assertTrue(pub.flush(), "%s: publisher lost" % label)
        for c in clients:
            got = []
            for _ in range(n):
                m = c.recv(IO_TIMEOUT)
                if m is None:
                    break
                got.append(m.get("traceId"))
            got += [m.get("traceId") for m in c.drain(0.4)]
            self.assertEqual(sorted(tids), sorted(got),
                             "%s: %s on %s: expected each of %d pushes once"
                             % (label, c.conn_id, subject, n))


class TwoGatewaysOnClusterTest(ClusterCase):
    """Gateway gw1 on node a, gw2 on node b of a 3-node cluster."""

    def setUp(self):
        super().setUp()
        self.cluster = self.res.nats_cluster()
        self.a, self.b, self.c = (self.cluster.node(n) for n in "abc")
        self.nodes = [self.a, self.b, self.c]

    def start_gateway(self, gw_id, urls):
        gw = self.res.gateway(gw_id, ",".join(urls), extra_args=FAST_RECONNECT)
        self.wait_gateway_ready(self.nodes, gw)
        return gw

    def alice_everywhere(self, gw1, gw2):
        clients = [self.res.ws(gw1, "?user=alice"), self.res.ws(gw1, "?user=alice"),
                   self.res.ws(gw2, "?user=alice")]
        for gw in (gw1, gw2):
            self.wait_subject(self.nodes, gw, "wsgw.user.alice")
        return clients

    # 1 ----------------------------------------------------------------------
    def test_user_push_and_broadcast_across_the_cluster(self):
        gw1 = self.start_gateway("gw1", [self.a.url])
        gw2 = self.start_gateway("gw2", [self.b.url])
        self.assertIs(self.a, find_gateway_node(self.nodes, gw1)[0])
        self.assertIs(self.b, find_gateway_node(self.nodes, gw2)[0])
        clients = self.alice_everywhere(gw1, gw2)
        bob = self.res.ws(gw2, "?user=bob")
        pub = self.res.nats_client(self.c.url, name="publisher-c")
        # Interest travels over the routes asynchronously: wait until a push
        # from node c reaches both gateways, then count exact deliveries.
        self.publish_until_received(pub, "wsgw.user.alice", clients, 10.0, "warm-up")
        self.expect_silence([bob], label="bob during alice's markers")

        self.assert_each_once(pub, "wsgw.user.alice", clients, label="user push via node c")
        self.expect_silence([bob], label="bob after pushes to alice")
        self.assert_each_once(pub, "wsgw.all", clients + [bob], label="broadcast via node c")
        pub_a = self.res.nats_client(self.a.url, name="publisher-a")
        self.assert_each_once(pub_a, "wsgw.user.alice", clients, label="user push via node a")
        # A push to a connection id of gw2 is not delivered by gw1.
        payload, tid = push_payload(to=clients[2].conn_id)
        pub.publish("wsgw.conn." + clients[2].conn_id, payload)
        self.expect_push(clients[2], tid, label="conn push to gw2's connection")
        self.expect_silence(clients + [bob], label="after the conn push")

    # 2a ---------------------------------------------------------------------
    def test_losing_a_node_no_gateway_is_on(self):
        gw1 = self.start_gateway("gw1", [self.a.url])
        gw2 = self.start_gateway("gw2", [self.b.url])
        clients = self.alice_everywhere(gw1, gw2)
        pub = self.res.nats_client(self.a.url, name="publisher-a")
        self.publish_until_received(pub, "wsgw.user.alice", clients, 10.0, "warm-up")

        self.c.kill()
        self.assertIs(self.a, find_gateway_node(self.nodes, gw1)[0])
        self.assertIs(self.b, find_gateway_node(self.nodes, gw2)[0])
        self.assert_each_once(pub, "wsgw.user.alice", clients, label="after node c died")
        self.assert_each_once(pub, "wsgw.all", clients, label="broadcast after node c died")
        for c in clients:
            self.assertTrue(c.health(), "HEALTH after node c died")

    # 2b ---------------------------------------------------------------------
    def test_gateway_fails_over_when_its_node_dies(self):
        # gw2 gets all three URLs (nats.c shuffles them); the node it lands on
        # dies. gw1 is then put on another node, given only that node's URL,
        # so the failover is gw2's alone; the publisher is on the third node.
        gw2 = self.start_gateway("gw2", [n.url for n in self.nodes])
        doomed, _ = find_gateway_node(self.nodes, gw2)
        self.assertIsNotNone(doomed, "gw2 is on no node")
        others = [n for n in self.nodes if n is not doomed]
        gw1 = self.start_gateway("gw1", [others[0].url])
        clients = self.alice_everywhere(gw1, gw2)
        pub = self.res.nats_client(others[1].url, name="publisher")
        self.publish_until_received(pub, "wsgw.user.alice", clients, 10.0, "warm-up")

        lines_before = gw2.line_count()
        doomed.kill()
        self.assertIsNotNone(
            gw2.wait_for(lambda o: o.get("event") == "nats_disconnected", IO_TIMEOUT,
                         start=lines_before),
            "gw2 logged no nats_disconnected after its node %s died" % doomed.name)
        took = self.publish_until_received(pub, "wsgw.user.alice", clients, FAILOVER_TIMEOUT,
                                           "failover")
        new_node, subjects = find_gateway_node(self.nodes, gw2)
        self.assertIsNotNone(new_node, "gw2 is on no surviving node")
        self.assertIsNot(doomed, new_node)
        self.assertIn("wsgw.user.alice", subjects)
        self.assertIsNotNone(
            gw2.wait_for(lambda o: o.get("event") == "nats_connected", 1.0, start=lines_before),
            "gw2 logged no nats_connected after failing over")
        self.assertIs(others[0], find_gateway_node(self.nodes, gw1)[0], "gw1 moved")
        self.assert_each_once(pub, "wsgw.user.alice", clients,
                              label="after failover (%.1f s)" % took)
        self.assert_each_once(pub, "wsgw.all", clients, label="broadcast after failover")
        self.assertTrue(clients[2].health())


class NatsRestartTest(ClusterCase):
    """A single nats-server that dies and comes back on the same port."""

    ROUTES = ({"command": "ECHO", "subject": "svc.test.echo", "mode": "request",
               "timeout_ms": 1000},)

    # 3 ----------------------------------------------------------------------
    def test_gateway_survives_a_nats_restart(self):
        nats = self.res.nats_server("solo")
        gw = self.res.gateway("gwr", nats.url, routes=self.ROUTES, extra_args=FAST_RECONNECT)
        self.wait_gateway_ready([nats], gw)
        alice = self.res.ws(gw, "?user=alice")
        self.wait_subject([nats], gw, "wsgw.user.alice")
        svc = self.res.service(nats.url, "svc.test.echo",
                               lambda env, msg: {"code": 0, "data": env["data"]})
        r = alice.request("ECHO", data={"before": True}, trace_id="t-before")
        self.assertEqual(0, (r or {}).get("code"), "ECHO before the outage: %r" % r)
        pub = self.res.nats_client(nats.url, name="publisher")
        self.publish_until_received(pub, "wsgw.user.alice", [alice], 5.0, "before the outage")
        pub.close()
        svc.close()

        lines_before = gw.line_count()
        nats.kill()
        self.assertIsNotNone(
            gw.wait_for(lambda o: o.get("event") == "nats_disconnected", IO_TIMEOUT,
                        start=lines_before),
            "no nats_disconnected log line after nats-server died")

        # During the outage: HEALTH works, a routed command gets an answer.
        self.assertTrue(alice.health(), "HEALTH not answered while NATS is down")
        t0 = time.monotonic()
        r = alice.request("ECHO", data={"during": True}, trace_id="t-outage", timeout=5.0)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(r, "no answer to a routed command while NATS is down")
        self.assertIn(r.get("code"), (502, 504), r)
        self.assertEqual("t-outage", r.get("traceId"))
        self.assertLess(elapsed, 3.0, "answer during the outage took %.1f s" % elapsed)
        self.assertTrue(gw.alive(), "gateway exited during the NATS outage:\n" + gw.tail())

        nats.restart()
        self.assertTrue(alice.health())
        pub = self.res.nats_client(nats.url, name="publisher-2")
        self.publish_until_received(pub, "wsgw.user.alice", [alice], FAILOVER_TIMEOUT,
                                    "after the restart")
        reconnected = gw.wait_for(lambda o: o.get("event") == "nats_connected", 1.0,
                                  start=lines_before)
        self.assertIsNotNone(reconnected, "no nats_connected log line after the restart")
        events = [o.get("event") for o in gw.events()]
        down = len(events) - 1 - events[::-1].index("nats_disconnected")
        self.assertIn("nats_connected", events[down:], "nats_connected not after nats_disconnected")

        # Everything is subscribed again: fixed subjects, the user, the inboxes.
        expected = sorted(gw.fixed_subjects() + ["wsgw.user.alice"])
        ok, seen = wait_gateway_subjects([nats], gw, lambda s: s == expected, IO_TIMEOUT)
        self.assertTrue(ok, "after reconnect: expected %r, saw %r" % (expected, seen))
        self.res.service(nats.url, "svc.test.echo",
                         lambda env, msg: {"code": 0, "data": env["data"]})
        r = alice.request("ECHO", data={"after": True}, trace_id="t-after")
        self.assertEqual({"command": "ECHO", "traceId": "t-after", "data": {"after": True},
                          "code": 0, "message": "success"}, r)
        payload, tid = push_payload(text="broadcast after restart")
        pub.publish("wsgw.all", payload)
        self.expect_push(alice, tid, label="broadcast after restart")


if __name__ == "__main__":
    unittest.main()
