#!/usr/bin/env bash
# Tracing on against tracing off: one ring of N trivial stamps (default 64) at parallelism 8, the
# fleet initialised by a first release, then four warm releases in the order off on on off (a
# steady drift of the machine cancels), tracing to a real Jaeger (.tools/bin/jaeger) when on.
#   usage: scripts/bench-tracing.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export TF_CLI_CONFIG_FILE="$root/.tools/tf.rc"
N=${1:-64}
work=$(mktemp -d)
trap 'kill $jaeger_pid 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/rollout" "$root/cmd/rollout"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
otlp=127.0.0.1:$(port)
query=127.0.0.1:$(port)
SPAN_STORAGE_TYPE=memory "$root/.tools/bin/jaeger" --collector.otlp.http.host-port=$otlp --collector.otlp.grpc.host-port=127.0.0.1:$(port) \
  --collector.grpc-server.host-port=127.0.0.1:$(port) --collector.http-server.host-port=127.0.0.1:$(port) \
  --query.http-server.host-port=$query --query.grpc-server.host-port=127.0.0.1:$(port) --admin.http.host-port=127.0.0.1:$(port) \
  >"$work/jaeger.log" 2>&1 &
jaeger_pid=$!
fleet=$work/fleet
# shellcheck source=scripts/stamps.sh
. "$root/scripts/stamps.sh"
stamp_fleet "$fleet" "$N" "$work/deployed"
run() { # release, "on" or "off": prints the wall seconds
  local s e
  s=$(date +%s.%N)
  if [ "$2" = on ]; then
    OTEL_EXPORTER_OTLP_ENDPOINT=http://$otlp "$work/rollout" --config "$fleet" --tf-bin "$root/.tools/bin/tf" start --release "$1" >/dev/null 2>&1
  else
    "$work/rollout" --config "$fleet" --tf-bin "$root/.tools/bin/tf" start --release "$1" >/dev/null 2>&1
  fi
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
run v1 off >/dev/null
echo "Measured with $("$root/.tools/bin/tf" version | head -1), $(nproc) cores, N=$N, parallelism 8."
echo
echo "| release | tracing | wall s |"
echo "| --- | --- | --- |"
off=0; on=0
for c in v2:off v3:on v4:on v5:off; do
  IFS=: read -r rel mode <<<"$c"
  w=$(run "$rel" "$mode")
  echo "| $rel | $mode | $(printf %.1f "$w") |"
  if [ "$mode" = on ]; then on=$(echo "$on + $w" | bc); else off=$(echo "$off + $w" | bc); fi
done
printf '| summed | on / off | %.1f / %.1f = %.2f |\n' "$on" "$off" "$(echo "$on / $off" | bc -l)"
spans=$(curl -s "http://$query/api/traces?service=rollout&limit=10" | python3 -c 'import json,sys; print(sum(len(t["spans"]) for t in json.load(sys.stdin)["data"]))')
echo
echo "Jaeger holds $spans spans of the two traced runs."
