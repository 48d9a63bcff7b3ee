#!/usr/bin/env bash
# Builds a Release gateway and runs the wsgw-bench set on this machine, then
# writes docs/BENCHMARKS.md (tools/bench/report.py) with the machine, the
# exact commands, the results against DESIGN.md §9 and the extrapolation to
# 1M connections.
#
#   tools/bench/run_benchmarks.sh [--no-build] [--out FILE] [--keep-tmp]
#
# Sizes fit a 2-core machine with 20,000 open files per process: at most
# 19,000 connections per process (the gateway holds one fd per connection
# too), gateway.workers=2. The scenarios take about 5 minutes; the first
# Release build takes longer. Loopback only; every process started here is
# stopped by PID on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-release}"
OUT="$ROOT/docs/BENCHMARKS.md"
BUILD=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --out)
      OUT="$2"
      shift
      ;;
    --keep-tmp) export BENCH_KEEP_TMP=1 ;;
    -h | --help)
      sed -n '2,13p' "$0"
      exit 0
      ;;
    *)
      echo "run_benchmarks: unknown argument $1" >&2
      exit 2
      ;;
  esac
  shift
done

T_BEGIN=$(date +%s)
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
cd "$ROOT"

for tool in nats-server python3 cmake ninja; do
  command -v "$tool" >/dev/null || {
    echo "run_benchmarks: $tool is missing (tools/lib/common.sh lists the Debian packages)" >&2
    exit 1
  }
done

BUILD_CMD=(cmake -S . -B "${BUILD_DIR#"$ROOT"/}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWSGW_TESTS=OFF)
if [ "$BUILD" = 1 ]; then
  "${BUILD_CMD[@]}" >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target wsgw example_service wsgw-bench
fi
export WSGW_BINARY="$BUILD_DIR/wsgw"
export EXAMPLE_SERVICE="$BUILD_DIR/tools/example_service"
BENCH="$BUILD_DIR/tools/wsgw-bench"
for b in "$WSGW_BINARY" "$EXAMPLE_SERVICE" "$BENCH"; do
  [ -x "$b" ] || {
    echo "run_benchmarks: $b is missing (drop --no-build)" >&2
    exit 1
  }
done

# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
EXT="$BENCH_TMP/external-nats"
cleanup() {
  bench_cleanup_ext || true
  bench_cleanup
}
bench_cleanup_ext() { [ -d "$EXT" ] && "$HERE/nats_ctl.sh" stop "$EXT"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS="$BENCH_TMP/results.tsv"
COMMANDS="$BENCH_TMP/commands.txt"
: >"$RESULTS"
{
  echo "# build"
  echo "${BUILD_CMD[*]}"
  echo "cmake --build ${BUILD_DIR#"$ROOT"/} -j2 --target wsgw example_service wsgw-bench"
} >"$COMMANDS"

WORKERS=2
RECONNECT_WAIT_MS=100
RECONNECT_JITTER_MS=0
GW_ARGS=(--gateway.workers=$WORKERS)
BIN_REL="${BUILD_DIR#"$ROOT"/}"

# Paths in the recorded commands: relative to the repository, $TMP for the
# temporary directory.
rel() { sed -e "s#$BENCH_TMP#\$TMP#g" -e "s#$ROOT/##g"; }

# quoted ARGS...: the arguments as one shell line, quoting those with spaces.
quoted() {
  local a out=()
  for a in "$@"; do
    if [[ "$a" == *[[:space:]]* ]]; then out+=("\"$a\""); else out+=("$a"); fi
  done
  printf '%s' "${out[*]}"
}

# gateway NAME [overrides...]: a fresh gateway (and its embedded nats-server).
gateway() {
  local name="$1"
  shift
  bench_start_gateway "$name" "${GW_ARGS[@]}" "$@"
  {
    echo
    echo "# $name: gateway (config: server.address=127.0.0.1, server.port=0, the ECHO route)"
    echo "$BIN_REL/wsgw --config \$TMP/$name/wsgw.toml --auth.mode=none --gateway.id=bench-$name" \
      "--nats.embedded.data_dir=\$TMP/$name/nats --nats.embedded.port=0" \
      "--nats.embedded.jetstream=false $(quoted "${GW_ARGS[@]}" "$@")" | rel
  } >>"$COMMANDS"
}

# bench LABEL ARGS...: runs wsgw-bench, keeps its BENCH line under LABEL.
bench() {
  local label="$1"
  shift
  local out="$BENCH_TMP/$label.out" err="$BENCH_TMP/$label.err"
  printf '%s\n' "$BIN_REL/tools/wsgw-bench $(quoted "$@")" | rel >>"$COMMANDS"
  bench_log "$label: wsgw-bench $*"
  local rc=0
  "$BENCH" "$@" >"$out" 2>"$err" || rc=$?
  cat "$err" >&2
  local line
  line="$(grep '^BENCH ' "$out" | tail -n1 || true)"
  if [ -z "$line" ]; then
    bench_log "$label: no BENCH line (exit $rc)"
    printf '%s\t%s\n' "$label" "{\"error\":\"exit $rc, no result\"}" >>"$RESULTS"
    return 0
  fi
  printf '%s\t%s\n' "$label" "${line#BENCH }" >>"$RESULTS"
  bench_log "$label: ${line#BENCH }"
}

monitored() {
  local a=(--url "$GW_URL" --gateway-pid "$GW_PID")
  [ -n "$NATS_URL" ] && a+=(--nats "$NATS_URL")
  [ -n "$NATS_PID" ] && a+=(--nats-pid "$NATS_PID")
  [ -n "$NATS_MON" ] && a+=(--nats-monitor "$NATS_MON")
  printf '%s\n' "${a[@]}"
}

run_idle() {
  local label="$1" n="$2"
  shift 2
  gateway "$label" "$@"
  mapfile -t m < <(monitored)
  bench "$label" --scenario idle --connections "$n" --settle-ms 2000 "${m[@]}" "${BENCH_AUTH[@]}" \
    "${BENCH_EXTRA[@]}"
  bench_stop_gateway
}

# --- the machine's floor: one loopback send, no gateway ---------------------
echo -e "\n# floor: no gateway" >>"$COMMANDS"
bench floor --scenario floor --payload-bytes 298

# --- idle: memory per connection and per subscribed user -------------------
# One user per connection (each also costs a NATS subscription), then 16
# connections per user (1188 users), which separates the two costs.
BENCH_AUTH=()
BENCH_EXTRA=()
run_idle idle-10k 10000
run_idle idle-19k 19000
BENCH_EXTRA=(--users 1188)
run_idle idle-19k-16pu 19000
BENCH_EXTRA=()
SECRET_FILE="$BENCH_TMP/hs256.secret"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$SECRET_FILE"
BENCH_AUTH=(--auth hs256 --secret-file "$SECRET_FILE")
run_idle idle-19k-hs256 19000 --auth.mode=jwt --auth.jwt.secret_file="$SECRET_FILE"
BENCH_AUTH=()

# --- broadcast: 10k connections at 25 / 50 / 100 pushes per second, then the
# same 500k deliveries/s (520k offered) over fewer connections, more frames
# per write --------------------------------------------------------------
for shape in 10000:25 10000:50 10000:100 2000:260 1000:520; do
  n="${shape%%:*}" rate="${shape##*:}"
  label="broadcast-$((n / 1000))k-$rate"
  gateway "$label"
  mapfile -t m < <(monitored)
  bench "$label" --scenario broadcast --connections "$n" --rate "$rate" \
    --seconds 10 --payload-bytes 256 "${m[@]}"
  bench_stop_gateway
done

# --- user pushes: 10k users, round-robin -----------------------------------
gateway user-push-10k
mapfile -t m < <(monitored)
bench user-push-10k --scenario user-push --connections 10000 --rate 20000 --seconds 10 \
  --payload-bytes 256 "${m[@]}"
bench_stop_gateway

# --- round trips: 1k connections through the example service --------------
gateway roundtrip-1k
bench_start_example_service "$NATS_URL"
echo "$BIN_REL/tools/example_service --nats $NATS_URL" >>"$COMMANDS"
mapfile -t m < <(monitored)
bench roundtrip-1k-max --scenario roundtrip --connections 1000 --window 8 --seconds 10 \
  --payload-bytes 256 "${m[@]}"
bench roundtrip-1k-25k --scenario roundtrip --connections 1000 --window 8 --rate 25000 \
  --seconds 10 --payload-bytes 256 "${m[@]}"
bench_stop "$SVC_PID" 10
bench_stop_gateway

# --- re-subscribing after a NATS restart (external nats-server) -----------
for n in 10000 19000; do
  label="resubscribe-$((n / 1000))k"
  read -r XPID XPORT XMON < <("$HERE/nats_ctl.sh" start "$EXT")
  {
    echo
    echo "# $label: external nats-server"
    echo "tools/bench/nats_ctl.sh start \$TMP/external-nats   # nats-server -a 127.0.0.1 -p <random> -m <random>"
  } >>"$COMMANDS"
  gateway "$label" --nats.url="nats://127.0.0.1:$XPORT" \
    --nats.reconnect_wait_ms=$RECONNECT_WAIT_MS --nats.reconnect_jitter_ms=$RECONNECT_JITTER_MS
  bench "$label" --scenario resubscribe --connections "$n" --url "$GW_URL" \
    --nats "nats://127.0.0.1:$XPORT" --gateway-pid "$GW_PID" --nats-pid "$XPID" \
    --nats-monitor "http://127.0.0.1:$XMON" \
    --restart-cmd "$HERE/nats_ctl.sh restart $EXT"
  bench_stop_gateway
  "$HERE/nats_ctl.sh" stop "$EXT"
done

# --- the report -------------------------------------------------------------
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
T_END=$(date +%s)
export LOAD_BEFORE LOAD_AFTER WORKERS RECONNECT_WAIT_MS RECONNECT_JITTER_MS
export DURATION_MIN=$(((T_END - T_BEGIN + 59) / 60))
export BUILD_DESC="${BUILD_CMD[*]}"
export GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export GIT_DIRTY="$(git -C "$ROOT" --no-optional-locks status --porcelain 2>/dev/null | head -n1)"
export BOOST_VERSION="$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp 2>/dev/null | tr _ .)"
export NATSC_VERSION="$(pkg-config --modversion libnats 2>/dev/null || echo ?)"
export NATS_SERVER_VERSION="$(nats-server --version 2>/dev/null | sed 's/^nats-server: //')"
export CXX_VERSION="$(c++ --version 2>/dev/null | head -n1)"
python3 - "$BENCH_TMP/machine.json" <<'EOF'
import json, os, platform, sys, time
def first(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
os_name = "?"
try:
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
except OSError:
    pass
e = os.environ
virt = ""
try:
    with open("/proc/cmdline") as f:
        cmdline = f.read()
    if "firecracker" in cmdline:
        virt = "Firecracker microVM" + (", nested (PVM)" if "nested_pvm=1" in cmdline else "")
except OSError:
    pass
load_before = float(e["LOAD_BEFORE"].split()[0])
load_after = float(e["LOAD_AFTER"].split()[0])
note = e.get("BENCH_LOAD_NOTE", "")
# The run itself raises the load average; only the load before it says that
# something else was using the machine.
if not note and load_before > 0.5:
    note = (f"The machine was shared with other work during this run (1-minute load average "
            f"{load_before:g} before it started, on {os.cpu_count()} cores), so "
            "throughput and especially latency are pessimistic and noisy. A re-run on a quiet "
            "machine is pending.")
m = {
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "git": e.get("GIT_REV", "?"),
    "dirty": bool(e.get("GIT_DIRTY")),
    "cpu_model": first("/proc/cpuinfo", "model name"),
    "nproc": os.cpu_count(),
    "mem_total_bytes": int(first("/proc/meminfo", "MemTotal").split()[0]) * 1024,
    "kernel": platform.release(),
    "os": os_name,
    "compiler": e.get("CXX_VERSION", "?"),
    "boost": e.get("BOOST_VERSION", "?"),
    "natsc": e.get("NATSC_VERSION", "?"),
    "nats_server": e.get("NATS_SERVER_VERSION", "?"),
    "nofile": os.popen("sh -c 'ulimit -n'").read().strip(),
    "load_before": e["LOAD_BEFORE"],
    "load_after": e["LOAD_AFTER"],
    "load_note": note,
    "build": e.get("BUILD_DESC", "?"),
    "workers": int(e["WORKERS"]),
    "tcp_nodelay": "true",
    "reconnect_wait_ms": int(e["RECONNECT_WAIT_MS"]),
    "reconnect_jitter_ms": int(e["RECONNECT_JITTER_MS"]),
    "duration_min": int(e["DURATION_MIN"]),
    "virt": virt,
}
with open(sys.argv[1], "w") as f:
    json.dump(m, f)
EOF
python3 "$HERE/report.py" "$RESULTS" "$BENCH_TMP/machine.json" "$COMMANDS" "$OUT"
bench_log "wrote ${OUT#"$ROOT"/} ($(((T_END - T_BEGIN) / 60)) min $(((T_END - T_BEGIN) % 60)) s)"
cat "$RESULTS"
