#!/usr/bin/env bash
# Install time of each Kafka client as on a fresh machine: `npm i <package>` in an empty project
# with an empty npm cache (everything downloaded from the registry), timed; kcat's
# `apt-get install` (timed only where kcat is not installed yet: an install cannot be repeated
# without removing it). Prints one JSON line per client and a table.
#
#   bash bench/clients/install-times.sh [--node NODE] [--skip-confluent]
#
# @confluentinc/kafka-javascript compiles librdkafka here (its prebuilt binary cannot be
# downloaded): that one is timed by bench/clients/build-confluent.sh, run afresh into a
# temporary folder, with a limit of 30 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE="$(command -v node)"
CONFLUENT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --node) NODE="$2"; shift 2 ;;
    --skip-confluent) CONFLUENT=0; shift ;;
    *) echo "install-times: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PATH="$(dirname "$NODE"):$PATH"
log() { printf '[install-times] %s\n' "$*" >&2; }
TMP="$(mktemp -d "${TMPDIR:-/tmp}/rxlake-install-times-XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/results.jsonl"
: >"$OUT"

now() { date +%s.%N; }
secs() { awk "BEGIN{printf \"%.1f\", $2 - $1}"; }

npm_time() { # name spec
  local dir="$TMP/$1"
  mkdir -p "$dir" && cd "$dir"
  printf '{"name":"install-time","private":true}\n' >package.json
  log "$1: npm i $2 (empty cache)"
  local t0 t1 status=0
  t0=$(now)
  npm i --no-audit --no-fund --cache "$dir/.npm-cache" "$2" >npm.log 2>&1 || status=$?
  t1=$(now)
  rm -rf "$dir/.npm-cache"
  local pkgs size
  pkgs=$(npm ls --all --parseable 2>/dev/null | tail -n +2 | sort -u | wc -l)
  size=$(du -sm node_modules 2>/dev/null | cut -f1)
  printf '{"client":"%s","how":"npm i %s","seconds":%s,"exit":%d,"node_modules_mb":%s,"packages":%s}\n' \
    "$1" "$2" "$(secs "$t0" "$t1")" "$status" "${size:-0}" "${pkgs:-0}" >>"$OUT"
  cd "$ROOT"
}

if command -v kcat >/dev/null 2>&1; then
  printf '{"client":"kcat","how":"apt-get install kcat","seconds":null,"note":"already installed"}\n' >>"$OUT"
else
  t0=$(now)
  bash "$ROOT/bench/clients/install-kcat.sh" >/dev/null
  t1=$(now)
  printf '{"client":"kcat","how":"apt-get install kcat","seconds":%s,"exit":0}\n' "$(secs "$t0" "$t1")" >>"$OUT"
fi
npm_time kafkajs kafkajs@2.2.4
npm_time platformatic "@platformatic/kafka@$(cd "$ROOT" && "$NODE" -p "require('./node_modules/@platformatic/kafka/package.json').version")"
npm_time platformatic-1 "@platformatic/kafka@^1"
if [ "$CONFLUENT" = 1 ]; then
  log "confluent: source build (bench/clients/build-confluent.sh into a temporary folder)"
  if bash "$ROOT/bench/clients/build-confluent.sh" --node "$NODE" --timeout 1800 --dir "$TMP/confluent" >/dev/null 2>"$TMP/confluent.err"; then :; fi
  b="$(cat "$TMP"/confluent/confluent-kafka-javascript-*/build.json 2>/dev/null || echo '{}')"
  size=$(du -sm "$TMP"/confluent/confluent-kafka-javascript-*/node_modules 2>/dev/null | cut -f1)
  printf '{"client":"confluent","how":"npm i @confluentinc/kafka-javascript (source build, CKJS_LINKING=dynamic)","build":%s,"node_modules_mb":%s}\n' "$b" "${size:-0}" >>"$OUT"
fi
cat "$OUT"
"$NODE" -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
console.table(rows.map((r) => ({ client: r.client, how: r.how, seconds: r.seconds ?? (r.build ? r.build.npm_seconds : null), "apt s": r.build ? r.build.apt_seconds : "", ok: r.exit === undefined ? (r.build ? r.build.loads : "") : r.exit === 0, "node_modules MB": r.node_modules_mb ?? "", packages: r.packages ?? "" })));
' "$OUT"
