#!/usr/bin/env bash
# Makes sure a headless Chromium is on PATH for the dashboard's browser test (driven with
# chromedp). Installs Debian's chromium package when missing (as root).
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" != 0 ]; then
  echo "need-chromium: chromium is not installed; install Debian's chromium package" >&2
  exit 1
fi
echo "need-chromium: installing Chromium from Debian's packages" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
