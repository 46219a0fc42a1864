#!/usr/bin/env bash
# Makes sure a Prometheus server binary is on PATH for the gate tests, which start their own on
# loopback (scraping an exporter the test controls). Installs Debian's prometheus package when
# missing (as root); the package's own service is not started.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "need-prometheus: prometheus is not installed; install Debian's prometheus package" >&2
  exit 1
fi
echo "need-prometheus: installing Prometheus from Debian's packages" >&2
apt-get update -qq >/dev/null
# policy-rc.d keeps the package from starting its service on a machine that has an init system.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null
