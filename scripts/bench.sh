#!/usr/bin/env bash
# Orchestration overhead: one ring of N trivial stamps on the local boundary, no gates, no bake,
# applied by `rollout start` and by bare OpenTofu commands run by this shell with the same
# parallelism (xargs -P), in the same run, two ways each: rollout's direct mode (the default:
# one `apply` per target) against bare `tofu apply -auto-approve`, and rollout's plan-first mode
# against bare `tofu plan -out` + `tofu apply PLANFILE`. Cold: nothing initialised (bare runs
# `init` first); warm: a second release over the same fleet. Prints one markdown row per case.
#   usage: scripts/bench.sh [N ...]   (default 16 64); PARALLEL: one or more, e.g. "8 32" (default 8)
#   BASELINE=<git revision> also builds that revision and measures it in the same run, so a change
#   that claims a speed-up shows before and after side by side.
#   ROUNDS=K (default 1): K warm releases in a row, alternating which of the two goes first, then
#   a "warm, all" row of their summed times: this machine's speed drifts by 15 % over minutes,
#   and the order A B B A cancels a steady drift that one pair would take for a difference.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export TF_CLI_CONFIG_FILE="$root/.tools/tf.rc"
tf="$root/.tools/bin/tf"
PS=${PARALLEL:-8}
bin=$(mktemp -d)/rollout
go build -o "$bin" "$root/cmd/rollout"
treemem=$(dirname "$bin")/treemem # peak memory of a whole process tree (internal/bench/treemem)
go build -o "$treemem" "$root/internal/bench/treemem"
profdir=$(mktemp -d) # the whole tree's CPU by program, of the last case measured
base=""
if [ -n "${BASELINE:-}" ]; then
  wt=$(mktemp -d)
  git -C "$root" worktree add -q --detach "$wt/src" "$BASELINE"
  (cd "$wt/src" && go build -o "$wt/rollout" ./cmd/rollout)
  git -C "$root" worktree remove --force "$wt/src"
  base="$wt/rollout"
fi

# secs CMD...: wall and CPU (user+sys of the command and everything it waited for) in seconds.
secs() {
  local me=$BASHPID s e t0 t1
  s=$(date +%s.%N)
  t0=$(awk '{print $14+$15+$16+$17}' /proc/$me/stat)
  "$@" >/dev/null 2>&1 || { echo "bench: $* failed" >&2; exit 1; }
  e=$(date +%s.%N)
  t1=$(awk '{print $14+$15+$16+$17}' /proc/$me/stat)
  echo "$(echo "$e - $s" | bc) $(echo "($t1 - $t0) / $(getconf CLK_TCK)" | bc -l)"
}

bare_one() { # dir release: init if needed, plan -out, apply the plan
  cd "$1"
  [ -d .terraform ] || "$tf" init -input=false -no-color >/dev/null
  "$tf" plan -input=false -no-color -out=p.tfplan -var-file=vars.json -var "app_version=$2" >/dev/null
  "$tf" apply -input=false -no-color p.tfplan >/dev/null
}
bare_apply_one() { # dir release: init if needed, one apply, as a person runs it by hand
  cd "$1"
  [ -d .terraform ] || "$tf" init -input=false -no-color >/dev/null
  "$tf" apply -input=false -no-color -auto-approve -var-file=vars.json -var "app_version=$2" >/dev/null
}
export -f bare_one bare_apply_one
export tf

echo "Measured with $("$tf" version | head -1) on both sides, $(nproc) cores."
echo
head="| N | parallel | case | direct wall s | bare apply wall s | ratio | plan-first wall s | bare plan+apply wall s | ratio | direct CPU s | bare apply CPU s | direct tree MiB | bare apply tree MiB |"
rule="| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
if [ -n "$base" ]; then
  echo "$head $BASELINE wall s | $BASELINE ratio to bare plan+apply |"; echo "$rule --- | --- |"
else
  echo "$head"; echo "$rule"
fi
for P in $PS; do
for N in ${@:-16 64}; do
  work=$(mktemp -d)
  fleet=$work/fleet; bare=$work/bare; bareapply=$work/bare-apply
  mkdir -p "$fleet/environments" "$fleet/terraform" "$bare" "$bareapply"
  cp -r "$root/terraform/stamp" "$fleet/terraform/stamp"
  cat > "$fleet/rollout.yaml" <<YAML
release:
  module: terraform/stamp
  vars: {app_version: "{{ .Release.Name }}", target: "{{ .Target.Name }}", deploy_dir: "$work/deployed"}
boundaries: {local: {cloud: local}}
rings:
  - name: all
    targets: {boundaries: [local]}
    maxParallel: $P
YAML
  { echo "targets:"; for i in $(seq 1 "$N"); do echo "  - {name: s-$i, boundary: local}"; done; } > "$fleet/environments/all.yaml"
  for i in $(seq 1 "$N"); do
    for b in "$bare" "$bareapply"; do
      mkdir -p "$b/s-$i"
      cp "$root/terraform/stamp/main.tf" "$b/s-$i/"
      printf '{"target": "s-%s", "deploy_dir": "%s/deployed-%s"}\n' "$i" "$work" "$(basename "$b")" > "$b/s-$i/vars.json"
    done
  done
  cp -r "$fleet" "$work/fleet-pf"
  sed -i "s|deploy_dir: \"$work/deployed\"|deploy_dir: \"$work/deployed-pf\"|; s|^boundaries:|defaults: {applyMode: plan-first}\nboundaries:|" "$work/fleet-pf/rollout.yaml"
  if [ -n "$base" ]; then
    cp -r "$fleet" "$work/fleet-base" # no applyMode: an earlier rollout may not know the key
    sed -i "s|deploy_dir: \"$work/deployed\"|deploy_dir: \"$work/deployed-base\"|" "$work/fleet-base/rollout.yaml"
  fi
  cases="cold:v1:rollout"
  for k in $(seq 1 "${ROUNDS:-1}"); do
    first=rollout; [ $((k % 2)) -eq 0 ] && first=bare
    cases+=" warm:v$((k + 1)):$first"
  done
  wr=0; wb=0; wp=0; wq=0
  for case in $cases; do
    IFS=: read -r name rel first <<<"$case"
    [ "$first" = bare ] && name+=" ($rel, bare first)"
    [ "$first" = rollout ] && [ "$rel" != v1 ] && [ "${ROUNDS:-1}" -gt 1 ] && name+=" ($rel)"
    # Peak resident memory of each whole process tree (rollout or the script, with every
    # Terraform process and provider plugin under it), sampled every 100 ms.
    one_rollout() { read -r rw rc < <(secs "$treemem" -o "$work/mem-rollout" -cpu "$work/cpu-rollout" -- "$bin" --config "$fleet" --tf-bin "$tf" start --release "$rel"); }
    one_bare() { read -r bw bc < <(secs "$treemem" -o "$work/mem-bare" -cpu "$work/cpu-bare" -- bash -c "ls -d $bareapply/s-* | xargs -P $P -I{} bash -c 'bare_apply_one {} $rel'"); }
    one_rollout_pf() { read -r pw pc < <(secs "$bin" --config "$work/fleet-pf" --tf-bin "$tf" start --release "$rel"); }
    one_bare_pf() { read -r qw qc < <(secs bash -c "ls -d $bare/s-* | xargs -P $P -I{} bash -c 'bare_one {} $rel'"); }
    if [ "$first" = bare ]; then one_bare; one_rollout; one_bare_pf; one_rollout_pf; else one_rollout; one_bare; one_rollout_pf; one_bare_pf; fi
    if [ "$rel" != v1 ]; then wr=$(echo "$wr + $rw" | bc -l); wb=$(echo "$wb + $bw" | bc -l); wp=$(echo "$wp + $pw" | bc -l); wq=$(echo "$wq + $qw" | bc -l); fi
    row=$(printf '| %s | %s | %s | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | %.1f | %.1f | %s | %s |' "$N" "$P" "$name" "$rw" "$bw" "$(echo "$rw / $bw" | bc -l)" \
      "$pw" "$qw" "$(echo "$pw / $qw" | bc -l)" "$rc" "$bc" "$(cat "$work/mem-rollout")" "$(cat "$work/mem-bare")")
    if [ -n "$base" ]; then
      read -r xw xc < <(secs "$base" --config "$work/fleet-base" --tf-bin "$tf" start --release "$rel")
      row+=$(printf ' %.1f | %.2f |' "$xw" "$(echo "$xw / $qw" | bc -l)")
    fi
    echo "$row"
    # Keep the tree's CPU by program of each case; the last N and parallelism's are printed.
    echo "N=$N, parallelism $P, $name" > "$profdir/$case.title"
    cp "$work/cpu-rollout" "$profdir/$case.rollout"; cp "$work/cpu-bare" "$profdir/$case.bare"
  done
  if [ "${ROUNDS:-1}" -gt 1 ]; then
    printf '| %s | %s | warm, all %s (summed) | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | | | | |\n' "$N" "$P" "${ROUNDS}" "$wr" "$wb" "$(echo "$wr / $wb" | bc -l)" "$wp" "$wq" "$(echo "$wp / $wq" | bc -l)"
  fi
  rm -rf "$work"
done
done

# Where the CPU of the last case went, by program, over the whole process tree (sampled every
# 100 ms: a process's last interval is missed, so rows sum to a little under the CPU column).
# ("self" is the root's own CPU, exact: rollout's process, or the bare side's bash.)
for case in $cases; do
  echo
  echo "CPU of the whole tree by program ($(cat "$profdir/$case.title"); direct mode against bare apply):"
  echo
  echo "| program | direct: processes | direct: CPU s | bare apply: processes | bare apply: CPU s |"
  echo "| --- | --- | --- | --- | --- |"
  join -a1 -a2 -e0 -o 0,1.2,1.3,2.2,2.3 <(sort "$profdir/$case.rollout") <(sort "$profdir/$case.bare") | sort -k3,3nr |
    awk '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
done

# Init amortisation: what one target's `init` costs, run one after another over 16 directories.
#   bare:    tofu init from the CLI configuration's mirror (each directory installs providers);
#   rollout: what rollout runs per target: init with -plugin-dir from the snapshot's one
#            resolution (links, no copies), -get=false, local backend; on a warm run it runs none.
echo
echo "| init, per target | wall ms | CPU ms |"
echo "| --- | --- | --- |"
work=$(mktemp -d)
mkdir -p "$work/res"
cp "$root/terraform/stamp/main.tf" "$work/res/"
(cd "$work/res" && "$tf" init -input=false -no-color -backend=false >/dev/null)
for mode in bare rollout; do
  for i in $(seq 1 16); do
    mkdir -p "$work/$mode/$i" && cp "$root/terraform/stamp/main.tf" "$work/$mode/$i/"
    cp "$work/res/.terraform.lock.hcl" "$work/$mode/$i/"
  done
  if [ "$mode" = bare ]; then
    one='cd {} && "$tf" init -input=false -no-color >/dev/null'
  else
    one='cd {} && TF_CLI_CONFIG_FILE=/dev/null "$tf" init -input=false -no-color -get=false -plugin-dir='"$work/res/.terraform/providers"' >/dev/null'
  fi
  read -r w c < <(secs bash -c "ls -d $work/$mode/* | xargs -P 1 -I{} bash -c '$one'")
  printf '| %s | %.0f | %.0f |\n' "$mode" "$(echo "$w * 1000 / 16" | bc -l)" "$(echo "$c * 1000 / 16" | bc -l)"
done
echo "| rollout, warm (same snapshot, backend and binary: init skipped) | 0 | 0 |"
rm -rf "$work"
