#!/usr/bin/env bash
# The bench_smoke test: a gateway (auth none, port 0, embedded nats-server on
# port 0, two workers), the example service, then `wsgw-bench --smoke`:
# 200 connections through idle, broadcast, user-push and roundtrip. Fails
# unless every push arrives and every request is answered with code 0. It
# asserts behaviour, never speed.
#
# Environment: WSGW_BINARY, EXAMPLE_SERVICE, WSGW_BENCH (paths; ctest sets
# them), optional SMOKE_CONNECTIONS (default 200).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${WSGW_BINARY:?path of the wsgw binary}"
: "${EXAMPLE_SERVICE:?path of the example_service binary}"
: "${WSGW_BENCH:?path of the wsgw-bench binary}"
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

command -v nats-server >/dev/null || {
  echo "smoke: nats-server is not installed (apt-get install nats-server)" >&2
  exit 1
}

bench_start_gateway smoke --gateway.workers=2
bench_start_example_service "$NATS_URL"

args=(--smoke --url "$GW_URL" --nats "$NATS_URL" --gateway-pid "$GW_PID"
  --connections "${SMOKE_CONNECTIONS:-200}" --timeout-seconds 180)
[ -n "$NATS_PID" ] && args+=(--nats-pid "$NATS_PID")
[ -n "$NATS_MON" ] && args+=(--nats-monitor "$NATS_MON")

set +e
"$WSGW_BENCH" "${args[@]}"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "smoke: wsgw-bench exited $rc; gateway log tail:" >&2
  tail -n 30 "$GW_LOG" >&2 || true
fi
exit "$rc"
