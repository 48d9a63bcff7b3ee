# Shared by tools/bench/smoke.sh and tools/bench/run_benchmarks.sh: start a
# gateway (with its embedded nats-server) or an external nats-server, read
# what they chose from their logs, and stop exactly the processes started
# here. Sourced, not run. Loopback only; every wait is bounded.

# bench_tmp: a private temporary directory, removed by bench_cleanup.
BENCH_TMP="${BENCH_TMP:-$(mktemp -d /tmp/wsgw-bench.XXXXXX)}"
BENCH_PIDS=()

bench_log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# bench_field LINE KEY: the value of "KEY":value in a JSON log line (numbers
# and strings without escapes).
bench_field() {
  local v
  v="$(printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[0-9.]*\)" | head -n1)"
  v="${v#*:}"
  v="${v#\"}"
  printf '%s' "${v%\"}"
}

# bench_wait_line FILE EVENT SECONDS [PID]: prints the first log line of FILE
# with "event":"EVENT", waiting at most SECONDS (and only while PID lives).
bench_wait_line() {
  local file="$1" event="$2" limit="$3" pid="${4:-}" i line
  for ((i = 0; i < limit * 10; i++)); do
    line="$(grep -m1 "\"event\":\"$event\"" "$file" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      printf '%s\n' "$line"
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  bench_log "no \"$event\" in $file within ${limit}s; its last lines:"
  tail -n 20 "$file" >&2 || true
  return 1
}

# bench_stop PID [SECONDS]: SIGTERM, wait, then SIGKILL. Only for our own PIDs.
bench_stop() {
  local pid="$1" limit="${2:-10}" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    bench_log "pid $pid ignored SIGTERM for ${limit}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
    bench_stop "${BENCH_PIDS[$i]}" 10
  done
  BENCH_PIDS=()
  if [ -z "${BENCH_KEEP_TMP:-}" ]; then
    rm -rf "$BENCH_TMP"
  fi
}

# bench_write_config FILE: a gateway config for benchmarks: loopback, port 0,
# the ECHO route of the example service. Everything else comes as overrides.
bench_write_config() {
  cat >"$1" <<'EOF'
[server]
address = "127.0.0.1"
port = 0

[[routes]]
command = "ECHO"
subject = "svc.example.echo"
mode = "request"
timeout_ms = 2000
EOF
}

# bench_start_gateway NAME [overrides...]: starts $WSGW_BINARY with a config
# of its own (auth none unless overridden, embedded nats-server with a fresh
# data dir on port 0 unless --nats.url is given) and sets GW_PID, GW_PORT,
# GW_URL, GW_LOG and, with the embedded server, NATS_URL, NATS_PID, NATS_MON.
bench_start_gateway() {
  local name="$1"
  shift
  local dir="$BENCH_TMP/$name"
  mkdir -p "$dir"
  bench_write_config "$dir/wsgw.toml"
  GW_LOG="$dir/gateway.log"
  "$WSGW_BINARY" --config "$dir/wsgw.toml" \
    --auth.mode=none \
    --gateway.id="bench-$name" \
    --nats.embedded.data_dir="$dir/nats" \
    --nats.embedded.port=0 \
    --nats.embedded.jetstream=false \
    "$@" 2>"$GW_LOG" &
  GW_PID=$!
  BENCH_PIDS+=("$GW_PID")
  local line
  line="$(bench_wait_line "$GW_LOG" listening 30 "$GW_PID")" || return 1
  GW_PORT="$(bench_field "$line" port)"
  GW_URL="ws://127.0.0.1:$GW_PORT/ws"
  NATS_URL="" NATS_PID="" NATS_MON=""
  if grep -q '"event":"nats_embedded_started"' "$GW_LOG"; then
    line="$(grep -m1 '"event":"nats_embedded_started"' "$GW_LOG")"
    NATS_URL="$(bench_field "$line" url)"
    NATS_PID="$(bench_field "$line" pid)"
    local mport
    mport="$(bench_field "$line" monitor_port)"
    if [ -n "$mport" ] && [ "$mport" != "0" ]; then
      NATS_MON="http://127.0.0.1:$mport"
    fi
  fi
  bench_log "gateway $name: pid $GW_PID, $GW_URL, nats ${NATS_URL:-external} (pid ${NATS_PID:-?}, monitor ${NATS_MON:-none})"
}

# bench_stop_gateway: stops the gateway started last (and its embedded server).
bench_stop_gateway() {
  bench_stop "$GW_PID" 15
  # The embedded server is the gateway's child and stops with it; make sure.
  if [ -n "${NATS_PID:-}" ]; then
    bench_stop "$NATS_PID" 5
  fi
}

# bench_start_example_service NATS_URL: sets SVC_PID once it is ready.
bench_start_example_service() {
  local log="$BENCH_TMP/example_service.$RANDOM.log"
  "$EXAMPLE_SERVICE" --nats "$1" 2>"$log" &
  SVC_PID=$!
  BENCH_PIDS+=("$SVC_PID")
  bench_wait_line "$log" ready 20 "$SVC_PID" >/dev/null || return 1
}
