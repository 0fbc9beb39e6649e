#!/usr/bin/env bash
# Installs kcat (Debian package; librdkafka's command-line consumer) if it is not on the PATH,
# and prints its path. Idempotent: a second run does nothing. Needs root (or sudo-less apt).
#
#   bash bench/clients/install-kcat.sh
set -euo pipefail
if ! command -v kcat >/dev/null 2>&1; then
  echo "install-kcat: apt-get install kcat" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q kcat >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q kcat >/dev/null; }
fi
command -v kcat
