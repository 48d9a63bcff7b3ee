#!/usr/bin/env python3
"""Writes docs/BENCHMARKS.md from the BENCH lines run_benchmarks.sh collected.

usage: report.py RESULTS.tsv MACHINE.json COMMANDS.txt OUT.md

RESULTS.tsv: one "<label>\t<json>" line per run (the JSON after "BENCH ").
MACHINE.json: facts about the machine and the run (see run_benchmarks.sh).
COMMANDS.txt: the exact commands, in order.
Standard library only (Debian's python3).
"""

import json
import sys

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * 1024 * 1024

# DESIGN.md §9.
BUDGET_RSS_PER_CONN = 1.5 * KIB
BUDGET_BROADCAST_RATE = 500_000
BUDGET_BROADCAST_P99_MS = 50
BUDGET_RT_RATE = 50_000
BUDGET_RT_P99_MS = 10


def load(path):
    runs = {}
    order = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            label, _, js = line.partition("\t")
            try:
                runs[label] = json.loads(js)
            except json.JSONDecodeError:
                runs[label] = {"error": js}
            order.append(label)
    return runs, order


def fmt_int(v):
    return "—" if v is None else f"{int(v):,}"


def fmt_bytes(v):
    if v is None:
        return "—"
    v = float(v)
    if abs(v) >= GIB:
        return f"{v / GIB:.2f} GiB"
    if abs(v) >= MIB:
        return f"{v / MIB:.1f} MiB"
    if abs(v) >= 10 * KIB:
        return f"{v / KIB:.1f} KiB"
    return f"{int(v):,} B"


def fmt_ms(v):
    return "—" if v is None else f"{v:g} ms"


def fmt_s(v):
    return "—" if v is None else f"{v:g} s"


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**not met**"


def broadcast_meets(r):
    return (r.get("deliveries_per_s", 0) >= BUDGET_BROADCAST_RATE
            and (lat(r, "p99_ms") or 1e9) <= BUDGET_BROADCAST_P99_MS
            and r.get("received") == r.get("expected"))


def broadcast_verdict(runs, order):
    """"**met** at N × R msg/s; " for the runs that meet the budget, if any."""
    met = [runs[k] for k in order if k.startswith("broadcast") and broadcast_meets(runs[k])]
    return "".join(f"{verdict(True)} at {fmt_int(r['connections'])} × {r['rate']:g} msg/s; "
                   for r in met)


def broadcast_alt(runs, order, main_run):
    """Other broadcast runs at about the same delivery rate, for the budget row."""
    parts = []
    for k in order:
        r = runs[k]
        if not k.startswith("broadcast") or r is main_run or not r.get("deliveries_per_s"):
            continue
        if r["deliveries_per_s"] < 0.9 * BUDGET_BROADCAST_RATE:
            continue
        parts.append(f"; {fmt_int(r['deliveries_per_s'])}/s with p99 {fmt_ms(lat(r, 'p99_ms'))} "
                     f"at {fmt_int(r['connections'])} connections × {r['rate']:g} msg/s")
    return "".join(parts)


def rt_busy(r, m):
    """How busy the machine was during a round-trip run (without the example service)."""
    cpu = r.get("cpu") or {}
    wall = cpu.get("wall_s")
    if not wall:
        return ""
    used = sum(cpu.get(k) or 0 for k in ("gateway_s", "nats_server_s", "bench_s"))
    return (f": gateway, nats-server and load generator alone kept {used / wall:.2f} of the "
            f"{m['nproc']} cores busy (the example service is on top), so requests queue for "
            "CPU; every round trip crosses six TCP hops (client → gateway → nats-server → "
            "service → nats-server → gateway → client), each a write and a read at the floor "
            "cost above")


def lat(run, key):
    return (run or {}).get("latency", {}).get(key)


KEEP_BEGIN = "<!-- BEGIN sections kept by report.py (measured by other tools) -->"
KEEP_END = "<!-- END sections kept by report.py -->"


def kept_sections(path):
    """The hand-maintained block of the existing report (with its markers), or ""."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return ""
    a = text.find(KEEP_BEGIN)
    b = text.find(KEEP_END)
    if a < 0 or b < a:
        return ""
    return text[a:b + len(KEEP_END)]


def main():
    results_path, machine_path, commands_path, out_path = sys.argv[1:5]
    runs, order = load(results_path)
    with open(machine_path, encoding="utf-8") as f:
        m = json.load(f)
    with open(commands_path, encoding="utf-8") as f:
        commands = f.read().rstrip("\n")

    idle = [runs[k] for k in order if k.startswith("idle")]
    idle_big = runs.get("idle-19k") or max(idle, key=lambda r: r.get("connections", 0), default=None)
    idle_auth = runs.get("idle-19k-hs256")
    idle_shared = runs.get("idle-19k-16pu")  # 16 connections per user
    bc = [(k, runs[k]) for k in order if k.startswith("broadcast")]
    bc_main = runs.get("broadcast-10k-50")
    up = runs.get("user-push-10k")
    rt_max = runs.get("roundtrip-1k-max")
    rt_half = runs.get("roundtrip-1k-25k")
    rs = [(k, runs[k]) for k in order if k.startswith("resubscribe")]
    floor = runs.get("floor")
    # Per delivery that leaves in a write of its own: the sender's CPU for the
    # send (with the receiver's TCP work) plus the reader's CPU for it.
    floor_us = (floor["send_cpu_us"] + floor["reader_cpu_us_per_message"]) if floor else None
    kept = kept_sections(out_path)

    out = []
    w = out.append
    w("# wsgw benchmarks")
    w("")
    w(f"Generated by `tools/bench/run_benchmarks.sh` on {m['date']} (git {m['git']}"
      f"{', with uncommitted changes' if m.get('dirty') else ''}). "
      "Every number below is a measurement of this run unless it is marked as an "
      "**extrapolation**. The load generator (`wsgw-bench`, tools/bench/) runs on the same "
      "machine as the gateway, over loopback, and shares its cores: the budgets of "
      "DESIGN.md §9 are stated for exactly that (\"gateway + load generator together\").")
    w("")
    if m.get("load_note"):
        w(f"> **Noise warning.** {m['load_note']}")
        w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| CPU | {m['cpu_model']} — {m['nproc']} cores (nproc) |")
    w(f"| memory | {fmt_bytes(m['mem_total_bytes'])} |")
    w(f"| kernel | {m['kernel']} |")
    w(f"| OS | {m['os']} |")
    w(f"| compiler | {m['compiler']} |")
    w(f"| Boost / nats.c / nats-server | {m['boost']} / {m['natsc']} / {m['nats_server']} |")
    w(f"| open files per process | {m['nofile']} (so at most 19,000 connections per process; "
      "the gateway holds one fd per connection too) |")
    w(f"| load average before / after the run | {m['load_before']} / {m.get('load_after', '?')} |")
    w(f"| build | `{m['build']}` |")
    if m.get("virt"):
        w(f"| virtualization | {m['virt']} |")
    w("")
    if floor:
        w("## The machine's floor")
        w("")
        w("What one delivery costs this machine before the gateway does anything: "
          "`wsgw-bench --scenario floor` sends "
          f"{fmt_int(floor['sends'])} messages of {floor['bytes']} bytes (a delivered push "
          "frame) over one loopback TCP connection with `TCP_NODELAY` while a thread reads "
          "them.")
        w("")
        w("| a system call that does nothing (getppid) | one send of a frame, sender's CPU "
          "(on loopback the receiver's TCP work runs inside it) | reading it, reader's CPU |")
        w("|---|---|---|")
        w(f"| {floor['null_syscall_us']:g} µs | **{floor['send_cpu_us']:g} µs** | "
          f"{floor['reader_cpu_us_per_message']:g} µs |")
        w("")
        w(f"So a message that travels in a write of its own costs ≈ {floor_us:.1f} µs of CPU "
          f"on this machine for the kernel alone, and its {m['nproc']} cores can carry at most "
          f"≈ **{fmt_int(m['nproc'] * 1e6 / floor_us)} such deliveries per second** with "
          "nothing else running. A gateway gets past that only by putting several frames for "
          "the same connection into one write, which happens when frames arrive faster than "
          "a flush pass (see the flush policy below). Read every throughput and latency "
          "figure below against this floor.")
        w("")
    w("## Gateway settings")
    w("")
    w(f"- `gateway.workers={m['workers']}` (one thread and event loop per core), "
      f"`ws.tcp_nodelay={m['tcp_nodelay']}` (the default: frames leave without Nagle delay), "
      "`auth.mode=none` unless marked hs256 (then HS256 JWTs minted in-process by the bench).")
    w("- Flush policy (engine/server/worker.cpp, `Worker::request_flush` / `flush_dirty`): a "
      "connection that gets frames is put on its worker's dirty list; after the batch of work "
      "in hand (socket reads, the NATS inbox drained), one posted flush pass writes each dirty "
      "connection's queue with one `writev`. A broadcast frame is encoded once and shared by "
      "every connection. There is no timed delay: a lone push leaves at once.")
    w("- NATS: the embedded nats-server (JetStream off for the benchmark) on loopback, except "
      "for the resubscribe runs, which use an external nats-server so it can be restarted "
      f"(`nats.reconnect_wait_ms={m['reconnect_wait_ms']}`, "
      f"`nats.reconnect_jitter_ms={m['reconnect_jitter_ms']}`; the defaults 1000 + up to 1000 "
      "ms add that much to the reconnect itself, not to the resubscription).")
    w("- Clients: one `wsgw-bench` process, one epoll thread, hand-written RFC 6455 client "
      "framing (masked frames), sources spread over 127.0.0.2–254; a user per connection "
      "(`u<i>`), so every connection also costs one NATS subscription, except idle-19k-16pu "
      "(`--users 1188`: 16 connections per user).")
    w("")

    # ---------------------------------------------------------------- budgets
    w("## Results against the budgets (DESIGN.md §9)")
    w("")
    w("| budget | measured | verdict |")
    w("|---|---|---|")
    if idle_big:
        per = idle_big.get("rss_per_conn_bytes")
        w(f"| idle memory ≤ 1.5 KiB per authenticated connection (gateway RSS growth / N) | "
          f"{fmt_int(per)} B/conn at {fmt_int(idle_big['connections'])} connections, auth none"
          + (f"; {fmt_int(idle_auth.get('rss_per_conn_bytes'))} B/conn with HS256 tokens"
             if idle_auth else "")
          + (f"; {fmt_int(idle_shared.get('rss_per_conn_bytes'))} B/conn with 16 connections "
             "per user (the per-user NATS subscription shared)" if idle_shared else "")
          + " | "
          + verdict(per is not None and per <= BUDGET_RSS_PER_CONN
                    and (not idle_auth or idle_auth.get("rss_per_conn_bytes", 1e9)
                         <= BUDGET_RSS_PER_CONN))
          + (" with one user per connection; "
             + ("met" if idle_shared.get("rss_per_conn_bytes", 1e9) <= BUDGET_RSS_PER_CONN
                else "not met") + " with 16 per user" if idle_shared else "")
          + " |")
    if bc_main:
        rate = bc_main.get("deliveries_per_s")
        p99 = lat(bc_main, "p99_ms")
        complete = bc_main.get("received") == bc_main.get("expected")
        w(f"| broadcast ≥ 500k deliveries/s of 256 B, p99 ≤ 50 ms | {fmt_int(rate)} deliveries/s "
          f"({fmt_int(bc_main['connections'])} connections × {bc_main['rate']:g} msg/s), "
          f"p99 {fmt_ms(p99)}, {'all' if complete else 'NOT all'} delivered"
          + broadcast_alt(runs, order, bc_main)
          + " | "
          + broadcast_verdict(runs, order)
          + verdict(rate is not None and rate >= BUDGET_BROADCAST_RATE and p99 is not None
                    and p99 <= BUDGET_BROADCAST_P99_MS and complete)
          + f" at {fmt_int(bc_main['connections'])} × {bc_main['rate']:g} msg/s"
          + (f": 500k single-frame writes/s would need ≈ {500_000 * floor_us / 1e6:.1f} cores "
             f"of kernel time at this machine's floor ({floor_us:.1f} µs per delivery), so "
             "frames must share writes, and at 50 msg/s per connection they only do when "
             "held ≥ 20 ms" if floor_us else "")
          + " |")
    if rt_max:
        rate = rt_max.get("round_trips_per_s")
        ok = rt_max.get("ok") == rt_max.get("sent")
        w(f"| ≥ 50k round trips/s (client → route → NATS request → service → reply) | "
          f"{fmt_int(rate)} round trips/s at full speed ({fmt_int(rt_max['connections'])} "
          f"connections, window {rt_max['window']}){'' if ok else ', with errors'} | "
          + verdict(rate is not None and rate >= BUDGET_RT_RATE and ok) + " |")
    if rt_half:
        p99 = lat(rt_half, "p99_ms")
        achieved = rt_half.get("round_trips_per_s")
        w(f"| round trip p99 ≤ 10 ms at half that rate (25k/s) | p99 {fmt_ms(p99)} at "
          f"{fmt_int(achieved)} round trips/s | "
          + verdict(p99 is not None and p99 <= BUDGET_RT_P99_MS
                    and achieved is not None and achieved >= 0.95 * 25_000)
          + rt_busy(rt_half, m) + " |")
    w("| Lua `handle` overhead ≤ 2 µs per command | measured by `wsgw-script-cost`, see "
      "\"Script layer\" below | see there |")
    w("")

    # ---------------------------------------------------------------- details
    w("## All runs")
    w("")
    w("### Idle connections (memory)")
    w("")
    w("| run | connections | users | connect all | gateway RSS before → after | per connection | "
      "nats-server RSS per user | /varz mem per user | kernel slab per socket* |")
    w("|---|---|---|---|---|---|---|---|---|")
    for k in order:
        if not k.startswith("idle"):
            continue
        r = runs[k]
        w(f"| {k} | {fmt_int(r.get('connected'))}/{fmt_int(r.get('connections'))} | "
          f"{fmt_int(r.get('users', r.get('connections')))} | {fmt_s(r.get('connect_s'))} | {fmt_bytes(r.get('gateway_rss_before_bytes'))} → "
          f"{fmt_bytes(r.get('gateway_rss_after_bytes'))} | "
          f"**{fmt_int(r.get('rss_per_conn_bytes'))} B** | "
          f"{fmt_int(r.get('nats_rss_per_user_bytes'))} B | "
          f"{fmt_int(r.get('nats_varz_mem_per_user_bytes'))} B | "
          f"{fmt_int(r.get('kernel_slab_per_socket_bytes'))} B |")
    w("")
    if idle_big and idle_shared and idle_big.get("rss_per_conn_bytes") and idle_shared.get("rss_per_conn_bytes"):
        n = idle_big["connections"]
        u = idle_shared.get("users") or 1
        per_user = ((idle_big["rss_per_conn_bytes"] - idle_shared["rss_per_conn_bytes"]) * n
                    / max(1, n - u))
        w(f"Per connection without its own user: {fmt_int(idle_shared['rss_per_conn_bytes'])} B; "
          f"each distinct user adds ≈ {fmt_int(per_user)} B to the gateway (its nats.c "
          "subscription, the bus's interest entry and the user index entry) and "
          f"≈ {fmt_int(idle_big.get('nats_rss_per_user_bytes'))} B to nats-server. HS256 "
          "authentication costs nothing per idle connection beyond auth none.")
        w("")
    w("\\* Kernel memory is not in any process's RSS. `Slab` growth of /proc/meminfo over "
      "2 × N sockets (both ends are on this host); other activity on the machine moves it too.")
    w("")
    w("### Pushes (broadcast on `wsgw.all`, user pushes on `wsgw.user.<id>`)")
    w("")
    w("| run | connections | offered | published | expected | received | deliveries/s | "
      "p50 | p90 | p99 | max | gateway CPU | bench CPU |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k in order:
        if not (k.startswith("broadcast") or k.startswith("user-push")):
            continue
        r = runs[k]
        cpu = r.get("cpu", {})
        offered = (f"{r['rate']:g} msg/s × {fmt_int(r.get('targets'))}" if k.startswith("broadcast")
                   else f"{r['rate']:g} msg/s")
        w(f"| {k} | {fmt_int(r.get('connected'))} | {offered} | {fmt_int(r.get('published'))} | "
          f"{fmt_int(r.get('expected'))} | {fmt_int(r.get('received'))} | "
          f"**{fmt_int(r.get('deliveries_per_s'))}** | {fmt_ms(lat(r, 'p50_ms'))} | "
          f"{fmt_ms(lat(r, 'p90_ms'))} | **{fmt_ms(lat(r, 'p99_ms'))}** | "
          f"{fmt_ms(lat(r, 'max_ms'))} | {fmt_s(cpu.get('gateway_s'))} / "
          f"{fmt_s(cpu.get('wall_s'))} | {fmt_s(cpu.get('bench_s'))} |")
    w("")
    w("Latency is publish (NATS publisher thread in wsgw-bench, steady clock) → the client "
      "has read the frame. Delivered frames are "
      + (f"{runs[bc[0][0]].get('delivered_message_bytes')} bytes of JSON" if bc else "~300 bytes")
      + " for a 256-byte push payload.")
    w("")
    w("### Round trips (ECHO → `svc.example.echo` → tools/example_service)")
    w("")
    w("| run | connections | window | target rate | sent | answered code 0 | errors | "
      "round trips/s | p50 | p90 | p99 | max | CPU gateway / nats-server / bench |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k in order:
        if not k.startswith("roundtrip"):
            continue
        r = runs[k]
        cpu = r.get("cpu", {})
        errs = r.get("errors_by_code") or {}
        w(f"| {k} | {fmt_int(r.get('connected'))} | {r.get('window')} | "
          f"{'max' if not r.get('rate') else fmt_int(r['rate']) + '/s'} | {fmt_int(r.get('sent'))} | "
          f"{fmt_int(r.get('ok'))} | {json.dumps(errs) if errs else 'none'} | "
          f"**{fmt_int(r.get('round_trips_per_s'))}** | {fmt_ms(lat(r, 'p50_ms'))} | "
          f"{fmt_ms(lat(r, 'p90_ms'))} | **{fmt_ms(lat(r, 'p99_ms'))}** | {fmt_ms(lat(r, 'max_ms'))} | "
          f"{fmt_s(cpu.get('gateway_s'))} / {fmt_s(cpu.get('nats_server_s'))} / "
          f"{fmt_s(cpu.get('bench_s'))} of {fmt_s(cpu.get('wall_s'))} |")
    w("")
    w("At full speed every connection keeps its window of requests outstanding, so latency "
      "there is queueing (Little's law: outstanding / rate), not the path's own cost; the "
      "paced run is the one to read for latency. The example service's own CPU is not in "
      "the table (it is another process on the same two cores).")
    w("")
    w("### Interest-based delivery: re-subscribing after a NATS restart")
    w("")
    w("The gateway subscribes to `wsgw.user.<id>` per local user, so a NATS reconnect must "
      "re-send one SUB per user (nats.c does it on reconnect). Measured with an external "
      "nats-server restarted on the same port (`tools/bench/nats_ctl.sh restart`); times are "
      "from the moment the new server accepts connections; `/connz` is polled every ~2 ms.")
    w("")
    w("| run | users | gateway subscriptions | server down (restart cmd) | gateway reconnected | "
      "all subscriptions back | push to the last user arrives | from kill to that push |")
    w("|---|---|---|---|---|---|---|---|")
    for k, r in rs:
        w(f"| {k} | {fmt_int(r.get('connected'))} | {fmt_int(r.get('gateway_subscriptions'))} | "
          f"{fmt_s(r.get('restart_s'))} | {fmt_s(r.get('gateway_reconnected_after_s'))} | "
          f"**{fmt_s(r.get('subscriptions_restored_after_s'))}** | "
          f"{fmt_s(r.get('first_push_after_s'))} | {fmt_s(r.get('first_push_after_kill_s'))} |")
    w("")

    if kept:
        w(kept)
        w("")

    # ---------------------------------------------------------- extrapolation
    w("## Extrapolation to 1M connections on a 4-core, 8 GB machine")
    w("")
    w("**Everything in this section is an extrapolation** from the measurements above, "
      "linear in the number of connections; nothing here ran at 1M (20,000 open files per "
      "process on this machine).")
    w("")
    if idle_big:
        per = idle_big.get("rss_per_conn_bytes") or 0
        per_auth = (idle_auth or {}).get("rss_per_conn_bytes") or per
        base = idle_big.get("gateway_rss_before_bytes") or 0
        slab = idle_big.get("kernel_slab_per_socket_bytes")
        nats_per = idle_big.get("nats_rss_per_user_bytes")
        w(f"- **Gateway memory**: {fmt_int(per_auth)} B × 1M + {fmt_bytes(base)} base ≈ "
          f"**{fmt_bytes(per_auth * 1_000_000 + base)}** of RSS with one user per connection"
          + (f"; ≈ {fmt_bytes(idle_shared['rss_per_conn_bytes'] * 1_000_000 + base)} when users "
             "hold 16 connections each" if idle_shared and idle_shared.get("rss_per_conn_bytes")
             else "") + ".")
        if slab:
            w(f"- **Kernel socket memory** (not in RSS): ~{fmt_int(slab)} B per idle socket "
              f"measured here (noisy) → ≈ {fmt_bytes(slab * 1_000_000)} for the gateway's 1M "
              "sockets (idle sockets hold no buffers; busy ones hold up to their send/receive "
              "buffers, tcp_wmem/tcp_rmem).")
        if nats_per:
            w(f"- **nats-server memory per subscribed user**: {fmt_int(nats_per)} B → "
              f"≈ {fmt_bytes(nats_per * 1_000_000)} per server for 1M distinct users; in a "
              "cluster every server holds the interest of every gateway (route "
              "subscriptions), so each node pays this, not only the one the gateway talks to.")
        total = per_auth * 1_000_000 + base + (slab or 0) * 1_000_000
        w(f"- Gateway + its sockets ≈ {fmt_bytes(total)} of 8 GB: "
          + ("fits, with room for send queues under load (bounded per connection by "
             "`ws.send_queue_limit_bytes`, so a burst to slow clients is capped)."
             if total < 6 * GIB else "does not fit comfortably.")
          + " nats-server should run on other machines at that size.")
    costs = []
    for k, r in bc:
        cpu = r.get("cpu", {}).get("gateway_s")
        if cpu and r.get("received"):
            costs.append((r["rate"], cpu / r["received"] * 1e6))
    if costs:
        worst = max(c for _, c in costs)
        best = min(c for _, c in costs)
        per_core_lo, per_core_hi = 1e6 / worst, 1e6 / best
        w("- **Broadcast CPU**: the gateway spent "
          + ", ".join(f"{c:.2f} µs at {rate:g} msg/s" for rate, c in costs)
          + " of CPU per delivery. The cost is mostly one `writev` per connection per flush "
          "(on loopback that syscall also runs the client's TCP receive path; see the floor "
          "above), so it falls as more messages share a flush. That is "
          f"≈ {fmt_int(per_core_lo)}–{fmt_int(per_core_hi)} deliveries/s per core, "
          f"≈ {fmt_int(4 * per_core_lo)}–{fmt_int(4 * per_core_hi)}/s on 4 cores with the load "
          "generator elsewhere; one broadcast to 1M connections takes "
          f"≈ {1e6 / (4 * per_core_hi) * 1000:.0f}–{1e6 / (4 * per_core_lo) * 1000:.0f} ms of "
          "fan-out (the last connection's latency), so a few broadcasts per second to everyone "
          "is the ceiling of one such gateway.")
    if rt_max and rt_max.get("cpu", {}).get("gateway_s"):
        cpu = rt_max["cpu"]["gateway_s"]
        n = rt_max.get("replies") or 1
        us = cpu / n * 1e6
        w(f"- **Round trips**: {us:.1f} µs of gateway CPU per round trip → ≈ "
          f"{fmt_int(4e6 / us)}/s on 4 cores (service and NATS on other machines); the count "
          "of idle connections does not change this cost, only the memory above.")
    if rs:
        big = max((r for _, r in rs), key=lambda r: r.get("connected", 0))
        t = big.get("subscriptions_restored_after_s")
        n = big.get("connected") or 1
        if t is not None:
            per_us = t / n * 1e6
            w(f"- **Re-subscribe window**: {fmt_int(n)} subscriptions came back {t:g} s after "
              f"the server was up → ≈ {per_us:.1f} µs each → ≈ **{per_us:.1f} s for 1M users** "
              "after every NATS reconnect, on top of the reconnect wait "
              "(`nats.reconnect_wait_ms` + jitter). Pushes to a user whose SUB has not been "
              "re-sent yet are lost (no JetStream on this path): that is the window message "
              "recovery must cover. The server side also re-propagates the interest to every "
              "cluster peer.")
    w("")

    w("## Exact commands")
    w("")
    w("```sh")
    w(commands)
    w("```")
    w("")
    w("Re-run everything with `tools/bench/run_benchmarks.sh` (about "
      f"{m.get('duration_min', '?')} minutes including the build on this machine); the raw "
      "BENCH lines of this run follow.")
    w("")
    w("<details><summary>Raw BENCH lines</summary>")
    w("")
    w("```")
    for k in order:
        w(f"{k}\t{json.dumps(runs[k], separators=(',', ':'))}")
    w("```")
    w("")
    w("</details>")
    w("")

    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
