#!/usr/bin/env bash
# Installs the Debian packages the suite and `make run` need, when missing:
#   prometheus  (+ promtool) the real metrics backend, for the tests and `make run`
#   prometheus-alertmanager  the real Alertmanager the notification tests push alerts to (testing/alertmanager.py)
#   wrk         the HTTP load generator of the edge benchmark
#   chromium    the browser of the web console's tests, `make screenshots` and the edge's EventSource test (headless)
#   postgresql  the server binaries (initdb, pg_ctl) of the PostgreSQL store tests' throwaway cluster
#   openssl     makes the throwaway CA and certificates of the TLS tests
#   nghttp2-client  h2load, the gRPC load generator of bench/bench_replicas.py (`make bench` only: not a default)
# Usage: system-deps.sh [PACKAGE ...]   (no argument: all of them)
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(prometheus prometheus-alertmanager wrk chromium postgresql openssl)

# initdb is not on PATH on Debian: it lives in /usr/lib/postgresql/<major>/bin (testing/postgres.py looks there).
have_initdb() {
  local bindir
  bindir=$(pg_config --bindir 2>/dev/null) && [ -x "$bindir/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
for package in "${wanted[@]}"; do
  case "$package" in
    prometheus) command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus) ;;
    postgresql) have_initdb || missing+=(postgresql) ;;
    nghttp2-client) command -v h2load >/dev/null || missing+=(nghttp2-client) ;;
    *) command -v "$package" >/dev/null || missing+=("$package") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
