#!/usr/bin/env bash
# rollout-start.sh RELEASE [rollout start flags...]: start (or resume) a release with the report
# on stdout as JSON (REPORT, default report.json) and the run's events as NDJSON (EVENTS, default
# events.ndjson), and map rollout's exit code to the pipeline's result: 0 done and 3 waiting (an
# approval, a paused run: the next job goes on) succeed; every other code fails the step, with the
# report's reason. Outputs (GITHUB_OUTPUT when set, else stdout): run, phase, exit-code, waiting.
set -uo pipefail
release=$1
shift
report=${REPORT:-report.json}
events=${EVENTS:-events.ndjson}
rollout start --release "$release" --output json --events "$events" "$@" > "$report"
code=$?
# field NAME: the report's top-level string NAME (its keys come before the rings').
field() { grep -o "\"$1\":\"[^\"]*\"" "$report" | head -1 | sed "s/^\"$1\":\"//; s/\"\$//"; }
run=$(field run) phase=$(field phase) waiting=$(field waitingFor)
out=${GITHUB_OUTPUT:-/dev/stdout}
{
  echo "run=$run"
  echo "phase=$phase"
  echo "exit-code=$code"
  echo "waiting=$waiting"
} >> "$out"
case $code in
  0) echo "rollout: run $run of $release: $phase" >&2; exit 0 ;;
  3) echo "rollout: run $run of $release waits for ${waiting:-a person}: $(field next)" >&2; exit 0 ;;
  4) echo "rollout: run $run of $release is blocked by a freeze (exit 4): retry later, or break glass with a reason" >&2 ;;
  5) echo "rollout: another run holds the fleet (exit 5): retry with a backoff" >&2 ;;
  2) echo "rollout: run $run of $release failed a gate and was rolled back (exit 2): $(field reason)" >&2 ;;
  *) echo "rollout: run ${run:-(none)} of $release: exit $code $(field error)$(field reason)" >&2 ;;
esac
exit "$code"
