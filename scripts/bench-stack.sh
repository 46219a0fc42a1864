#!/usr/bin/env bash
# A three-component stack (terraform/stack: network -> data -> app, outputs flowing) over N
# stamps, applied by `rollout start` and by the floor: bare OpenTofu run by this shell, per stamp
# the components in dependency order (`init` once, `apply -auto-approve`, `output -raw` of what
# the next one reads), stamps at the same parallelism (xargs -P). Three releases: v1 cold (every
# component created), v2 changing the application only, v3 changing the network (every component
# changes). The floor applies every component of every release, as a script that does not know
# what changed must. Prints one markdown row per release.
#   usage: scripts/bench-stack.sh [N ...]   (default 16); PARALLEL (default 8)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export TF_CLI_CONFIG_FILE="$root/.tools/tf.rc"
tf="$root/.tools/bin/tf"
P=${PARALLEL:-8}
bin=$(mktemp -d)/rollout
go build -o "$bin" "$root/cmd/rollout"

secs() { # wall seconds of a command
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "bench-stack: $* failed" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}

floor_one() { # stamp-dir release cidr: the three components in order, outputs passed by hand
  local d=$1 rel=$2 cidr=$3 t
  t=$(basename "$d")
  apply() { cd "$d/$1" && { [ -d .terraform ] || "$tf" init -input=false -no-color >/dev/null; } && "$tf" apply -input=false -no-color -auto-approve "${@:2}" >/dev/null; }
  apply network -var "target=$t" -var "cidr=$cidr"
  subnet=$(cd "$d/network" && "$tf" output -raw subnet_id)
  apply data -var "subnet_id=$subnet"
  endpoint=$(cd "$d/data" && "$tf" output -raw endpoint)
  apply app -var "db_endpoint=$endpoint" -var "app_version=$rel"
}
export -f floor_one
export tf

echo "Measured with $("$tf" version | head -1) on both sides, $(nproc) cores, parallelism $P."
echo
echo "| N stamps x 3 components | release | rollout wall s | floor wall s | ratio |"
echo "| --- | --- | --- | --- | --- |"
for N in ${@:-16}; do
  work=$(mktemp -d)
  fleet=$work/fleet; floor=$work/floor
  mkdir -p "$fleet/environments" "$fleet/terraform"
  cp -r "$root/terraform/stack" "$fleet/terraform/stack"
  cat > "$fleet/rollout.yaml" <<YAML
release:
  components:
    network: {module: terraform/stack/network}
    data:
      module: terraform/stack/data
      dependsOn: [network]
      inputs: {subnet_id: "{{ .Components.network.Outputs.subnet_id }}"}
    app:
      module: terraform/stack/app
      dependsOn: [data]
      inputs: {db_endpoint: "{{ .Components.data.Outputs.endpoint }}", app_version: "{{ .Release.Name }}"}
  vars: {target: "{{ .Target.Name }}"}
boundaries: {local: {cloud: local, maxParallel: $P}}
rings:
  - name: all
    targets: {boundaries: [local]}
    maxParallel: $P
YAML
  { echo "targets:"; for i in $(seq 1 "$N"); do echo "  - {name: s-$i, boundary: local}"; done; } > "$fleet/environments/all.yaml"
  for i in $(seq 1 "$N"); do
    for c in network data app; do
      mkdir -p "$floor/s-$i/$c" && cp "$root/terraform/stack/$c/main.tf" "$floor/s-$i/$c/"
    done
  done
  for step in "v1 10.0.0.0/16 cold" "v2 10.0.0.0/16 app-only" "v3 10.1.0.0/16 network"; do
    read -r rel cidr what <<<"$step"
    rw=$(secs "$bin" --config "$fleet" --tf-bin "$tf" start --release "$rel" --var "cidr=$cidr")
    fw=$(secs bash -c "ls -d $floor/s-* | xargs -P $P -I{} bash -c 'floor_one {} $rel $cidr'")
    printf '| %s | %s (%s) | %.1f | %.1f | %.2f |\n' "$N" "$rel" "$what" "$rw" "$fw" "$(echo "$rw / $fw" | bc -l)"
  done
  rm -rf "$work"
done
