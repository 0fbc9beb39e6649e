#!/usr/bin/env bash
# Builds @confluentinc/kafka-javascript (librdkafka bindings) from source into
# .stack/confluent-kafka-javascript-<version>-abi<Node ABI>/ (or under --dir), for the client
# benchmark.
# Its prebuilt binary is downloaded from a host this machine cannot reach, so `npm i` falls back
# to compiling librdkafka and the binding; that needs Debian's libcurl4-openssl-dev, libssl-dev,
# libsasl2-dev, zlib1g-dev and libzstd-dev (installed here if missing) and Node's headers (taken
# from the Node that runs the build, `--nodedir`, since node-gyp cannot download them either).
# `CKJS_LINKING=dynamic` makes librdkafka's configure use those system libraries: the default
# (static) downloads zlib, OpenSSL, zstd and curl sources from their sites, which fails here.
#
#   bash bench/clients/build-confluent.sh [--node NODE] [--timeout SECONDS] [--version V] [--dir PARENT]
#
# Idempotent: a build that loads is reused. Prints the folder holding node_modules on success;
# writes timings to <folder>/build.json; exits non-zero (within the timeout) when it fails.
# Not a dependency of the package: a source build takes minutes on every fresh clone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE="$(command -v node)"
LIMIT=1500
STACK="$ROOT/.stack"
VERSION=1.10.1
while [ $# -gt 0 ]; do
  case "$1" in
    --node) NODE="$2"; shift 2 ;;
    --timeout) LIMIT="$2"; shift 2 ;;
    --version) VERSION="$2"; shift 2 ;;
    --dir) STACK="$2"; shift 2 ;;
    *) echo "build-confluent: unknown argument $1" >&2; exit 2 ;;
  esac
done
NODE="$(realpath "$(command -v "$NODE")")"
mkdir -p "$STACK"
STACK="$(realpath "$STACK")"
NODE_VERSION="$("$NODE" --version)"
# The binding is built against one Node ABI (it uses NAN): one folder per ABI.
DIR="$STACK/confluent-kafka-javascript-$VERSION-abi$("$NODE" -p process.versions.modules)"
log() { printf '[build-confluent] %s\n' "$*" >&2; }

loads() { (cd "$DIR" && "$NODE" -e "require('@confluentinc/kafka-javascript'); console.log(require('@confluentinc/kafka-javascript').librdkafkaVersion)") 2>/dev/null; }
if [ -d "$DIR/node_modules/@confluentinc/kafka-javascript" ] && loads >/dev/null; then
  echo "$DIR"
  exit 0
fi

# Node's headers: the Node installation's include/node (the official builds and Debian's have it).
NODEDIR="$(cd "$(dirname "$(readlink -f "$NODE")")/.." && pwd)"
[ -f "$NODEDIR/include/node/node.h" ] || { log "no Node headers under $NODEDIR/include/node"; exit 1; }

pkgs=(libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev libzstd-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
t0=$(date +%s.%N)
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
t1=$(date +%s.%N)

rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
printf '{"name":"confluent-build","private":true}\n' >package.json
log "npm i @confluentinc/kafka-javascript@$VERSION (fresh npm cache; source build, at most $LIMIT s; log in $DIR/npm.log)"
status=0
PATH="$(dirname "$NODE"):$PATH" npm_config_nodedir="$NODEDIR" CKJS_LINKING=dynamic \
  timeout "$LIMIT" npm i --no-audit --no-fund --foreground-scripts --cache "$DIR/.npm-cache" \
  "@confluentinc/kafka-javascript@$VERSION" >npm.log 2>&1 || status=$?
t2=$(date +%s.%N)
rm -rf "$DIR/.npm-cache"
ok=false
lib=""
if [ "$status" = 0 ] && lib="$(loads)"; then ok=true; fi
printf '{"version":"%s","node":"%s","apt_seconds":%.1f,"npm_seconds":%.1f,"exit":%d,"loads":%s,"librdkafka":"%s"}\n' \
  "$VERSION" "$NODE_VERSION" "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")" "$status" "$ok" "$lib" >build.json
log "$(cat build.json)"
if [ "$ok" != true ]; then
  [ "$status" = 124 ] && log "timed out after $LIMIT s"
  tail -n 30 npm.log >&2
  exit 1
fi
echo "$DIR"
