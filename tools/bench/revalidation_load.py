#!/usr/bin/python3
"""Re-validation load on the auth service (docs/PROTOCOL.md §6.6, "Load").

Starts a nats-server (OS-picked ports), one gateway in combined mode
(auth.mode = jwt, re-validation by the auth service every
--interval-ms, --batch tokens per request), a counting auth service that
answers every token valid for its own user, and opens --connections idle
authenticated connections (tools' wsgw-bench `idle` scenario with --auth
hs256 when it is built, otherwise asyncio websockets with bounded
concurrency). Once every connection is open it lets --warmup-intervals
intervals pass (every connection gets its first re-validation), then counts
what the service sees over --measure-intervals intervals (default: 1 + 1,
two intervals in all) and prints one JSON line:

  {"connections":2000,"interval_ms":10000,"batch":100,"requests_per_s":...,
   "tokens_per_s":...,"expected_tokens_per_s":200.0,"max_batch":...,...}

The spec says the service sees connections / interval tokens per second in
connections / interval / batch requests per second.

Usage (Debian's interpreter, python3-websockets 10.4 for the fallback):
  /usr/bin/python3 tools/bench/revalidation_load.py [--connections 2000]
      [--interval-ms 10000] [--batch 100] [--wsgw build/wsgw]
      [--bench build/tools/wsgw-bench] [--client auto|bench|python]

Limits: connections <= 10000, the whole run < 2 minutes (checked up front:
interval x (warmup + measure) + connecting must fit), loopback only.
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from auth_service import CountingAuthService, mint_jwt  # noqa: E402
from nats_helpers import HOST, Resources, wait_until  # noqa: E402

SECRET = "revalidation-load-secret-0123456789abcdef"
AUTH_SUBJECT = "svc.auth.load"
MAX_CONNECTIONS = 10000
RUN_LIMIT_S = 115.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(msg):
    sys.stderr.write("[revalidation_load] %s\n" % msg)
    sys.stderr.flush()


_ADMIN_PORTS = {}


def metric(gw, name, timeout=2.0):
    """One unlabelled sample of the gateway's /metrics, or None."""
    if gw.id not in _ADMIN_PORTS:
        line = gw.wait_for(lambda o: o.get("event") == "admin_listening" and "port" in o, 5.0)
        if line is None:
            return None
        _ADMIN_PORTS[gw.id] = int(line["port"])
    url = "http://%s:%d/metrics" % (HOST, _ADMIN_PORTS[gw.id])
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            text = resp.read().decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r"^%s(?:\{\})? ([0-9.eE+-]+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------------------
# Clients


class BenchClients:
    """wsgw-bench --scenario idle --auth hs256: holds the connections for
    --settle-ms after the last WELCOME, then prints its BENCH line."""

    def __init__(self, binary, gw, n, hold_ms, timeout_s):
        self.args = [binary, "--scenario", "idle", "--url", gw.ws_url(""),
                     "--connections", str(n), "--auth", "hs256", "--secret", SECRET,
                     "--user-prefix", "load", "--settle-ms", str(int(hold_ms)),
                     "--connect-rate", "5000", "--connect-concurrency", "500",
                     "--timeout-seconds", str(int(timeout_s))]
        self.proc = None
        self.out = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        return self

    def finish(self, timeout):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
        self.out = out.decode("utf-8", "replace")
        for line in self.out.splitlines():
            if line.startswith("BENCH "):
                try:
                    return json.loads(line[6:])
                except ValueError:
                    break
        log("wsgw-bench gave no BENCH line (rc %s): %s" % (self.proc.returncode,
                                                             err.decode("utf-8", "replace")[-500:]))
        return None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class PythonClients:
    """asyncio websockets on a background loop; at most `concurrency`
    handshakes at a time; each connection reads (and answers pings) until
    closed."""

    def __init__(self, gw, n, concurrency=200):
        self.gw = gw
        self.n = n
        self.concurrency = concurrency
        self.loop = asyncio.new_event_loop()
        self.welcomed = 0
        self.failed = 0
        self.closed = 0
        self.close_codes = {}
        self._conns = []
        self._stop = None
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def start(self):
        asyncio.run_coroutine_threadsafe(self._open_all(), self.loop)
        return self

    async def _open_all(self):
        import websockets
        self._stop = asyncio.Event()
        sem = asyncio.Semaphore(self.concurrency)

        async def one(i):
            async with sem:
                tok = mint_jwt(SECRET, "load%d" % i)
                try:
                    ws = await websockets.connect(self.gw.ws_url("?token=" + tok), open_timeout=10,
                                                  ping_interval=None, close_timeout=1)
                    first = await asyncio.wait_for(ws.recv(), 10)
                    if '"WELCOME"' not in first:
                        raise RuntimeError("first message is not WELCOME")
                except Exception:  # noqa: BLE001 - counted
                    self.failed += 1
                    return
                self.welcomed += 1
                self._conns.append(ws)
            try:
                async for _ in ws:
                    pass
            except Exception:  # noqa: BLE001 - a close
                pass
            if not self._stop.is_set():
                self.closed += 1
                code = str(ws.close_code)
                self.close_codes[code] = self.close_codes.get(code, 0) + 1

        await asyncio.gather(*(one(i) for i in range(self.n)))

    def finish(self, timeout):
        return {"connected": self.welcomed, "connect_failures": self.failed,
                "disconnects": self.closed, "close_codes": dict(self.close_codes)}

    def stop(self):
        async def close_all():
            if self._stop is not None:
                self._stop.set()
            await asyncio.gather(*(ws.close() for ws in list(self._conns)),
                                 return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(20)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--interval-ms", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2, help="gateway worker threads")
    ap.add_argument("--warmup-intervals", type=float, default=1.0)
    ap.add_argument("--measure-intervals", type=float, default=1.0)
    ap.add_argument("--wsgw", default=os.environ.get("WSGW_BINARY")
                    or os.path.join(ROOT, "build", "wsgw"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "tools", "wsgw-bench"))
    ap.add_argument("--client", choices=("auto", "bench", "python"), default="auto")
    o = ap.parse_args()

    if not 1 <= o.connections <= MAX_CONNECTIONS:
        ap.error("--connections must be 1..%d" % MAX_CONNECTIONS)
    if o.interval_ms < 1000:
        ap.error("--interval-ms must be >= 1000 (the gateway's minimum)")
    if not 1 <= o.batch <= 1000:
        ap.error("--batch must be 1..1000")
    if o.warmup_intervals < 0 or o.measure_intervals <= 0:
        ap.error("--warmup-intervals >= 0 and --measure-intervals > 0")
    interval_s = o.interval_ms / 1000.0
    waiting_s = interval_s * (o.warmup_intervals + o.measure_intervals)
    connect_budget_s = 10.0 + o.connections / 1000.0
    if waiting_s + connect_budget_s + 15 > RUN_LIMIT_S:
        ap.error("interval x (warmup + measure) = %.0f s plus connecting does not fit in %.0f s"
                 % (waiting_s, RUN_LIMIT_S))
    use_bench = o.client == "bench" or (o.client == "auto" and os.access(o.bench, os.X_OK))
    if use_bench and not os.access(o.bench, os.X_OK):
        ap.error("--bench %s is not executable" % o.bench)
    os.environ["WSGW_BINARY"] = o.wsgw
    t_run = time.monotonic()

    res = Resources(prefix="wsgw-revalidation-load-")
    clients = None
    try:
        nats = res.nats_server("n")
        svc = res.add(CountingAuthService(nats.url, AUTH_SUBJECT))
        args = ["--auth.mode=jwt", "--auth.jwt.secret=" + SECRET,
                "--auth.service.subject=" + AUTH_SUBJECT,
                "--auth.service.timeout_ms=2000",
                "--auth.service.revalidate_interval_ms=%d" % o.interval_ms,
                "--auth.service.revalidate_batch=%d" % o.batch,
                "--auth.service.unavailable_grace_ms=300000",
                "--server.max_connections=%d" % (o.connections + 100)]
        gw = res.gateway("gwload", nats.url, extra_args=args, workers=o.workers)
        hold_ms = (connect_budget_s + waiting_s + 3) * 1000
        if use_bench:
            clients = BenchClients(o.bench, gw, o.connections, hold_ms,
                                   timeout_s=RUN_LIMIT_S).start()
        else:
            clients = PythonClients(gw, o.connections).start()
        log("opening %d connections with %s" % (o.connections,
                                                 "wsgw-bench" if use_bench else "python"))

        # All connected: the clients' own count (python) or the gateway's
        # connection gauge (wsgw-bench prints only at the end).
        def all_open():
            if isinstance(clients, PythonClients):
                return clients.welcomed + clients.failed >= o.connections
            v = metric(gw, "wsgw_connections", 1.0)
            return v is not None and v >= o.connections

        t0 = time.monotonic()
        ok = wait_until(all_open, connect_budget_s, 0.2)
        t_conn = time.monotonic()
        if not ok:
            log("not every connection was open after %.0f s" % (t_conn - t0))
        t_measure = t_conn + interval_s * o.warmup_intervals
        t_end = t_measure + interval_s * o.measure_intervals
        time.sleep(max(0.0, t_end - time.monotonic()))
        open_at_end = metric(gw, "wsgw_connections", 2.0)

        timeline = svc.timeline()
        window = [(t, k, n) for t, k, n in timeline
                  if k == "revalidate" and t_measure <= t < t_end]
        span = t_end - t_measure
        requests = len(window)
        tokens = sum(n for _, _, n in window)
        all_reval = [n for _, k, n in timeline if k == "revalidate"]
        expected_tps = o.connections / interval_s
        client_facts = clients.finish(timeout=max(5.0, hold_ms / 1000.0 - (time.monotonic() - t0)
                                                  + 10)) if use_bench else clients.finish(0)
        result = {
            "connections": o.connections,
            "client": "wsgw-bench" if use_bench else "python",
            "connected": (client_facts or {}).get("connected"),
            "connect_s": round(t_conn - t0, 3),
            "open_at_end": open_at_end,
            "interval_ms": o.interval_ms,
            "batch": o.batch,
            "gateway_workers": o.workers,
            "window_s": round(span, 3),
            "requests": requests,
            "tokens": tokens,
            "requests_per_s": round(requests / span, 2),
            "tokens_per_s": round(tokens / span, 2),
            "expected_tokens_per_s": round(expected_tps, 2),
            "expected_requests_per_s": round(expected_tps / o.batch, 2),
            "tokens_vs_expected": round(tokens / span / expected_tps, 3) if expected_tps else None,
            "max_batch": max(all_reval, default=0),
            "max_batch_in_window": max((n for _, _, n in window), default=0),
            "mean_batch_in_window": round(tokens / requests, 2) if requests else 0,
            "kinds": dict(svc.kinds()),
            "client_disconnects": (client_facts or {}).get("disconnects"),
            "client_close_codes": (client_facts or {}).get("close_codes"),
            "run_s": round(time.monotonic() - t_run, 1),
        }
        print(json.dumps(result, sort_keys=False))
        return 0
    finally:
        if clients is not None:
            clients.stop()
        res.close()


if __name__ == "__main__":
    sys.exit(main())
