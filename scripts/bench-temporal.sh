#!/usr/bin/env bash
# The engine on Temporal against the in-process engine: one ring of N trivial stamps (default 64)
# at parallelism 8 through real OpenTofu, the fleet initialised by a first release, then four warm
# releases in the order inprocess temporal temporal inprocess (a steady drift of the machine
# cancels). On Temporal: a local development server (.tools/bin/temporal, SQLite), a journal
# worker and one worker for the stamps' boundary, all on this machine.
#   usage: scripts/bench-temporal.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export TF_CLI_CONFIG_FILE="$root/.tools/tf.rc"
N=${1:-64}
tf=${ROLLOUT_TF_BIN:-$root/.tools/bin/tf}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
go build -o "$work/rollout" "$root/cmd/rollout"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$root/.tools/bin/temporal" server start-dev --headless --ip 127.0.0.1 --port "$port" --db-filename "$work/temporal.db" \
  --log-level error >"$work/temporal.log" 2>&1 &
server=$!
pids+=($!)
for _ in $(seq 1 300); do # the server answers within seconds
  "$root/.tools/bin/temporal" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1 && break
  sleep 0.2
done
fleet=$work/fleet
# shellcheck source=scripts/stamps.sh
. "$root/scripts/stamps.sh"
stamp_fleet "$fleet" "$N" "$work/deployed" "engine: inprocess
temporal: {address: \"127.0.0.1:$port\", taskQueuePrefix: bench}
"
rollout() { "$work/rollout" --config "$fleet" --tf-bin "$tf" "$@"; }
for w in --journal "--boundary local"; do
  # shellcheck disable=SC2086
  ROLLOUT_ENGINE=temporal "$work/rollout" --config "$fleet" --tf-bin "$tf" worker $w >>"$work/workers.log" 2>&1 &
  pids+=($!)
done
cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; } # a process's CPU seconds so far
run() { # release, engine: prints the wall seconds
  local s e
  s=$(date +%s.%N)
  ROLLOUT_ENGINE=$2 rollout start --release "$1" >/dev/null 2>&1 || { echo "bench: $2 release $1 failed" >&2; tail -20 "$work/workers.log" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
run v1 inprocess >/dev/null
echo "Measured with $("$tf" version | head -1), $(nproc) cores, N=$N, parallelism 8; Temporal: $("$root/.tools/bin/temporal" --version | head -1), development server on this machine."
echo
echo "| release | engine | wall s |"
echo "| --- | --- | --- |"
inproc=0; temporal=0; servercpu=0
for c in v2:inprocess v3:temporal v4:temporal v5:inprocess; do
  IFS=: read -r rel engine <<<"$c"
  c0=$(cpu "$server")
  w=$(run "$rel" "$engine")
  [ "$engine" = temporal ] && servercpu=$(echo "$servercpu + $(cpu "$server") - $c0" | bc)
  echo "| $rel | $engine | $(printf %.1f "$w") |"
  if [ "$engine" = temporal ]; then temporal=$(echo "$temporal + $w" | bc); else inproc=$(echo "$inproc + $w" | bc); fi
done
printf '| summed | temporal / inprocess | %.1f / %.1f = %.2f |\n' "$temporal" "$inproc" "$(echo "$temporal / $inproc" | bc -l)"
echo
printf 'The Temporal server used %.1f CPU seconds during the two Temporal releases (of %.1f s x %d cores).\n' "$servercpu" "$temporal" "$(nproc)"
