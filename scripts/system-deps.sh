#!/usr/bin/env bash
# Installs the Debian packages the suite and `make run` need, when missing:
#   prometheus  (+ promtool) the real metrics backend, for the tests and `make run`
#   wrk         the HTTP load generator of the edge benchmark
#   chromium    the browser of the EventSource test of the edge (run headless)
# Usage: system-deps.sh [PACKAGE ...]   (no argument: all of them)
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(prometheus wrk chromium)
missing=()
for package in "${wanted[@]}"; do
  case "$package" in
    prometheus) command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus) ;;
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
