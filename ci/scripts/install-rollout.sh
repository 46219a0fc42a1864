#!/usr/bin/env bash
# install-rollout.sh VERSION BASE PUBKEY DEST: download rollout VERSION for this machine from BASE
# (an https:// URL or a directory holding the release), verify checksums.txt's signature with
# PUBKEY (cosign when it is on PATH, else openssl) and the archive's SHA-256 against it, and put
# the binary in DEST. Nothing unverified is ever extracted. Used by the GitHub Actions action
# (.github/actions/rollout) and the Azure Pipelines template (ci/azure-pipelines/rollout.yml).
set -euo pipefail
version=$1 base=$2 pubkey=$3 dest=$4

os=$(uname -s | tr '[:upper:]' '[:lower:]')
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-rollout: no release for $(uname -m)" >&2; exit 1 ;;
esac
archive="rollout_${version}_${os}_${arch}.tar.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() { # fetch NAME: from BASE into the work directory
  case "$base" in
    http://* | https://*) curl -fsSL --retry 3 -o "$work/$1" "$base/$1" ;;
    *) cp "$base/$1" "$work/$1" ;;
  esac
}
for f in checksums.txt checksums.txt.sig "$archive"; do fetch "$f"; done

# 1. checksums.txt was signed by the release key.
if command -v cosign >/dev/null; then
  cosign verify-blob --key "$pubkey" --signature "$work/checksums.txt.sig" --insecure-ignore-tlog "$work/checksums.txt" >/dev/null 2>&1 ||
    { echo "install-rollout: checksums.txt is not signed by $pubkey" >&2; exit 1; }
else
  base64 -d "$work/checksums.txt.sig" > "$work/checksums.sig.der"
  openssl dgst -sha256 -verify "$pubkey" -signature "$work/checksums.sig.der" "$work/checksums.txt" >/dev/null ||
    { echo "install-rollout: checksums.txt is not signed by $pubkey" >&2; exit 1; }
fi
# 2. the archive is the one checksums.txt names.
(cd "$work" && grep "  $archive\$" checksums.txt | sha256sum -c --status) ||
  { echo "install-rollout: $archive does not match checksums.txt" >&2; exit 1; }
# 3. only then is anything extracted.
mkdir -p "$dest"
tar -xzf "$work/$archive" -C "$work"
install -m 0755 "$work/rollout_${version}_${os}_${arch}/rollout" "$dest/rollout"
echo "install-rollout: rollout $version ($os/$arch) verified and installed in $dest" >&2
