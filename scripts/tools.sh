#!/usr/bin/env bash
# Installs what rollout's demo and tests need under .tools/, idempotently and only through the Go
# module proxy:
#   .tools/bin/tf         the Terraform-compatible binary (TF_BIN, else tofu/terraform on PATH,
#                         else OpenTofu built from its module source)
#   .tools/providers/     a filesystem mirror with hashicorp/time for both registries' addresses
#   .tools/tf.rc          a CLI configuration that installs providers from that mirror only
# and with the argument "test" (make test-tools, which make test runs), the tests' servers:
#   .tools/bin/jaeger     Jaeger's all-in-one: a real trace collector for the telemetry tests
#   .tools/bin/cosign     sigstore's cosign: an independent verifier of rollout's attestations
#   .tools/bin/cyclonedx-gomod  the CycloneDX SBOM of each binary `make release` builds
#   .tools/bin/versitygw, .tools/bin/fake-gcs-server, .tools/bin/azurite-blob
#                         real S3, Google Cloud Storage and Azure Blob servers for the state
#                         backend tests (Azurite from the npm registry; node and npm from
#                         Debian's packages when missing)
# Set ROLLOUT_BUILD_TOFU=1 to build OpenTofu even when a binary is on PATH.
set -euo pipefail

TOFU_VERSION=1.10.10
TIME_VERSION=0.14.2

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin" "$tools/src"
os=$(go env GOOS)
arch=$(go env GOARCH)

# module_dir MODULE@VERSION: the module's source directory in the Go module cache.
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# build_from_module MODULE VERSION OUT PKG [LDFLAGS]: copy a module's source out of the read-only
# module cache (its go.mod has replace directives, so `go install` refuses it) and build PKG there.
build_from_module() {
  local mod=$1 ver=$2 out=$3 pkg=$4 ldflags=${5:-}
  local src="$tools/src/$(basename "$mod")-$ver"
  if [ ! -f "$src/go.mod" ]; then
    local dir
    dir=$(module_dir "$mod@v$ver")
    [ -n "$dir" ] || { echo "tools: could not download $mod@v$ver through the Go module proxy" >&2; exit 1; }
    rm -rf "$src.tmp" && cp -r "$dir" "$src.tmp" && chmod -R u+w "$src.tmp" && mv "$src.tmp" "$src"
  fi
  echo "tools: building $mod v$ver from the Go module proxy (once)" >&2
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg") && mv "$out.tmp" "$out"
}

# go_install PKG VERSION NAME: build PKG@vVERSION into .tools/NAME-VERSION/ once; link .tools/bin/NAME.
go_install() {
  local pkg=$1 ver=$2 name=$3
  local out="$tools/$name-$ver/$name"
  if [ ! -x "$out" ]; then
    echo "tools: building $pkg v$ver from the Go module proxy (once)" >&2
    mkdir -p "$(dirname "$out")"
    GOBIN="$(dirname "$out")" go install -trimpath -ldflags "-s -w" "$pkg@v$ver"
    [ -x "$out" ] || mv "$(dirname "$out")/$(basename "$pkg")" "$out"
  fi
  if [ "$(readlink "$tools/bin/$name" 2>/dev/null)" != "$out" ]; then ln -sfn "$out" "$tools/bin/$name"; fi
}
# release_tools: what `make release` needs beyond Go (scripts/tools.sh release): cyclonedx-gomod,
# which writes each binary's CycloneDX SBOM, and cosign, which verifies the signatures.
COSIGN_VERSION=2.6.5
CYCLONEDX_GOMOD_VERSION=1.10.0
release_tools() {
  go_install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod "$CYCLONEDX_GOMOD_VERSION" cyclonedx-gomod
  go_install github.com/sigstore/cosign/v2/cmd/cosign "$COSIGN_VERSION" cosign
}
if [ "${1:-}" = release ]; then release_tools; exit 0; fi

# 1. The Terraform-compatible binary.
choose_bin() {
  if [ -n "${TF_BIN:-}" ]; then command -v "$TF_BIN" || { echo "tools: TF_BIN=$TF_BIN is not executable" >&2; exit 1; }; return; fi
  if [ "${ROLLOUT_BUILD_TOFU:-}" != 1 ]; then
    command -v tofu && return
    command -v terraform && return
  fi
  local built="$tools/opentofu-$TOFU_VERSION/tofu"
  if [ ! -x "$built" ]; then
    mkdir -p "$(dirname "$built")"
    build_from_module github.com/opentofu/opentofu "$TOFU_VERSION" "$built" ./cmd/tofu \
      "-s -w -X github.com/opentofu/opentofu/version.dev=no" >&2
  fi
  echo "$built"
}
bin=$(choose_bin)
if [ "$(readlink "$tools/bin/tf" 2>/dev/null)" != "$bin" ]; then
  ln -sfn "$bin" "$tools/bin/tf"
fi

# 2. The time provider, in a filesystem mirror under both registry hostnames (Terraform resolves
# hashicorp/time to registry.terraform.io, OpenTofu to registry.opentofu.org).
mirror="$tools/providers"
first="$mirror/registry.opentofu.org/hashicorp/time/$TIME_VERSION/${os}_$arch/terraform-provider-time_v$TIME_VERSION"
if [ ! -x "$first" ]; then
  mkdir -p "$(dirname "$first")"
  build_from_module github.com/hashicorp/terraform-provider-time "$TIME_VERSION" "$first" . "-s -w"
fi
second="$mirror/registry.terraform.io/hashicorp/time/$TIME_VERSION/${os}_$arch/terraform-provider-time_v$TIME_VERSION"
if [ ! -x "$second" ]; then
  mkdir -p "$(dirname "$second")"
  cp "$first" "$second"
fi

# 3. The CLI configuration: providers from the mirror only, never from a network registry.
rc="$tools/tf.rc"
want=$(printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "$mirror")
if [ "$(cat "$rc" 2>/dev/null)" != "$want" ]; then printf '%s\n' "$want" > "$rc"; fi

echo "tools: $(TF_CLI_CONFIG_FILE="$rc" "$tools/bin/tf" version 2>/dev/null | head -1) at $bin; providers in $mirror" >&2

# The servers the tests run (`scripts/tools.sh test`, which make test runs; make demo needs none).
[ "${1:-}" = test ] || exit 0
# 4. Object-storage servers on loopback for the end-to-end tests of the s3 and gcs state backends:
# versitygw (S3, with the conditional writes that the s3 backend's use_lockfile needs) and
# fake-gcs-server, each built once from the Go module proxy.
VERSITYGW_VERSION=1.8.0
FAKE_GCS_VERSION=1.56.1
go_install github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" versitygw
go_install github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION" fake-gcs-server
# cosign, a verifier of in-toto attestations that rollout does not write, for the evidence test.
release_tools # cosign and cyclonedx-gomod: the release test builds and verifies a release
# The Temporal CLI, whose `server start-dev` is a real Temporal server (SQLite, loopback) for the
# engine-on-Temporal tests, benchmarks and `rollout demo --engine temporal`.
TEMPORAL_VERSION=1.5.1
go_install github.com/temporalio/cli/cmd/temporal "$TEMPORAL_VERSION" temporal

# 5. Jaeger's all-in-one, a trace collector with an OTLP receiver and a query API, for the
# telemetry tests (its go.mod has replace directives: built from a copy of the module).
JAEGER_VERSION=1.76.0
jaeger="$tools/jaeger-$JAEGER_VERSION/jaeger"
if [ ! -x "$jaeger" ]; then
  mkdir -p "$(dirname "$jaeger")"
  build_from_module github.com/jaegertracing/jaeger "$JAEGER_VERSION" "$jaeger" ./cmd/all-in-one "-s -w"
fi
if [ "$(readlink "$tools/bin/jaeger" 2>/dev/null)" != "$jaeger" ]; then ln -sfn "$jaeger" "$tools/bin/jaeger"; fi

# 6. Azurite, Azure Storage's emulator, for the azurerm backend's tests.
AZURITE_VERSION=3.37.0
azurite="$tools/azurite-$AZURITE_VERSION"
if [ ! -x "$azurite/node_modules/.bin/azurite-blob" ]; then
  if ! command -v npm >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "tools: npm is needed to install Azurite (Debian: apt-get install nodejs npm)" >&2; exit 1; }
    echo "tools: installing node and npm from Debian's packages" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "tools: installing azurite $AZURITE_VERSION from the npm registry (once)" >&2
  npm install --prefix "$azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
fi
if [ "$(readlink "$tools/bin/azurite-blob" 2>/dev/null)" != "$azurite/node_modules/.bin/azurite-blob" ]; then
  ln -sfn "$azurite/node_modules/.bin/azurite-blob" "$tools/bin/azurite-blob"
fi
echo "tools: the tests' servers and verifiers (versitygw, fake-gcs-server, jaeger, azurite-blob, cosign, cyclonedx-gomod, temporal) in $tools/bin" >&2
