#!/usr/bin/env bash
# An external nats-server on loopback for wsgw-bench's resubscribe scenario,
# restartable on the same ports.
#
#   nats_ctl.sh start DIR            random client and monitor ports; prints
#                                    "PID CLIENT_PORT MONITOR_PORT"
#   nats_ctl.sh restart DIR          stop, then start on the same two ports;
#                                    returns once it accepts connections
#   nats_ctl.sh stop DIR
#
# DIR holds nats.pid, nats.ports and nats.log. Waits are bounded (10 s).
set -euo pipefail

cmd="${1:?start|restart|stop}"
dir="${2:?state directory}"
mkdir -p "$dir"

stop() {
  [ -s "$dir/nats.pid" ] || return 0
  local pid i
  pid="$(cat "$dir/nats.pid")"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# start CLIENT_PORT MONITOR_PORT (-1 = random).
start() {
  local port="$1" mport="$2" i line
  : >"$dir/nats.log"
  rm -f "$dir/nats.pid"
  # setsid + closed fds: the server outlives this script and holds none of
  # its caller's sockets.
  setsid nats-server -a 127.0.0.1 -p "$port" -m "$mport" -P "$dir/nats.pid" \
    -l "$dir/nats.log" </dev/null >/dev/null 2>&1 &
  for ((i = 0; i < 500; i++)); do
    if grep -q "Server is ready" "$dir/nats.log" 2>/dev/null && [ -s "$dir/nats.pid" ]; then
      line="$(grep -m1 'Listening for client connections on' "$dir/nats.log")"
      port="${line##*:}"
      line="$(grep -m1 'Starting http monitor on' "$dir/nats.log")"
      mport="${line##*:}"
      echo "$port $mport" >"$dir/nats.ports"
      echo "$(cat "$dir/nats.pid") $port $mport"
      return 0
    fi
    sleep 0.02
  done
  echo "nats_ctl: nats-server did not start; log:" >&2
  tail -n 20 "$dir/nats.log" >&2 || true
  return 1
}

case "$cmd" in
  start) start -1 -1 ;;
  stop) stop ;;
  restart)
    read -r port mport <"$dir/nats.ports"
    stop
    start "$port" "$mport" >/dev/null
    ;;
  *)
    echo "usage: nats_ctl.sh start|restart|stop DIR" >&2
    exit 2
    ;;
esac
