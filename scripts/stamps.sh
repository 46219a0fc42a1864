# stamp_fleet DIR N DEPLOYED [HEAD]: writes into DIR a fleet of N trivial stamps (terraform/stamp)
# in one ring at parallelism 8 on one local boundary, deploying into DEPLOYED; HEAD is YAML put at
# the top of its rollout.yaml. Sourced by the benchmark scripts that compare two ways of running
# the same ring (bench-tracing.sh, bench-temporal.sh).
stamp_fleet() {
  local fleet=$1 n=$2 deployed=$3 head=${4:-}
  mkdir -p "$fleet/environments" "$fleet/terraform"
  cp -r "$root/terraform/stamp" "$fleet/terraform/stamp"
  cat > "$fleet/rollout.yaml" <<YAML
${head}release:
  module: terraform/stamp
  vars: {app_version: "{{ .Release.Name }}", target: "{{ .Target.Name }}", deploy_dir: "$deployed"}
boundaries: {local: {cloud: local}}
rings:
  - name: all
    targets: {boundaries: [local]}
    maxParallel: 8
YAML
  { echo "targets:"; for i in $(seq 1 "$n"); do echo "  - {name: s-$i, boundary: local}"; done; } > "$fleet/environments/all.yaml"
}
