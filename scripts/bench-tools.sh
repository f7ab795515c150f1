#!/usr/bin/env bash
# What `make bench` needs beyond the venv: the `hey` HTTP load generator (Debian package).
set -euo pipefail
command -v hey >/dev/null && exit 0
if [ "$(id -u)" != 0 ]; then echo "bench-tools: need root to apt-get install hey (or install it yourself)" >&2; exit 1; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends hey
