#!/usr/bin/env bash
# The transactions job against a Spark Structured Streaming job doing the same (typed Delta table,
# per-account 1-minute windows into Delta and PostgreSQL), on one generated topic, each in its
# own process, measured the same way (wall time and the peak of the summed RSS of the process
# tree, bench/treerss.py).
#
#   bash bench/transactions_baseline.sh [--records 300000] [--rxlake-node PATH]
#
# Needs the local stack (started here) and .stack/spark-venv (created by
# `bash bench/baseline.sh --spark`, or here from bench/spark/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
RECORDS=300000
NODE_BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --rxlake-node) NODE_BIN="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "[transactions-baseline] $*" >&2; }

bash scripts/stack.sh up >&2
SPARK_PY="$ROOT/.stack/spark-venv/bin/python"
if ! { [ -x "$SPARK_PY" ] && "$SPARK_PY" -c 'import pyspark, delta, psycopg2' >/dev/null 2>&1; }; then
  log "installing .stack/spark-venv from bench/spark/requirements.txt"
  [ -x "$SPARK_PY" ] || python3 -m venv "$ROOT/.stack/spark-venv"
  "$SPARK_PY" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r bench/spark/requirements.txt
fi
if [ -z "$NODE_BIN" ]; then
  NODE_BIN="$(ls -d .stack/node-*/bin/node 2>/dev/null | sort | tail -1 || true)"
fi
NODE_ARGS=(--max-semi-space-size=8)
[ -n "$NODE_BIN" ] || { NODE_BIN="$(command -v node)"; NODE_ARGS+=(--import tsx); }

RUN_ID="$(date +%s)"
PREFIX="bench-txb-$RUN_ID."
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rxlake-txbase-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# 1,000 accounts over 10 minutes of event time.
STEP=$(python3 -c "print(max(1, round(600000 / $RECORDS)))")
log "producing $RECORDS transactions to ${PREFIX}transactions (3 partitions, step ${STEP} ms)"
"$ROOT/node_modules/.bin/tsx" src/pipelines/transactions/generate.ts --count "$RECORDS" --topics transactions \
  --topic-prefix "$PREFIX" --partitions 3 --accounts 1000 --step-ms "$STEP" >/dev/null

log "rxlake transactions job ($("$NODE_BIN" --version))"
ID="txb_rx_$RUN_ID"
KAFKA_TOPIC_PREFIX="$PREFIX" TRANSACTION_TOPICS=transactions KAFKA_CONSUMER_GROUP="$ID" PIPELINE_ID="$ID" \
  DELTA_BASE_PATH="$WORK/rxlake" HTTP_PORT=0 PROGRESS_INTERVAL_SECONDS=0 LOG_LEVEL=warn \
  python3 bench/treerss.py "$WORK/rxlake.rss" "$NODE_BIN" "${NODE_ARGS[@]}" src/pipelines/transactions.ts --until-caught-up >&2

log "Spark Structured Streaming job"
python3 bench/treerss.py "$WORK/spark.rss" "$SPARK_PY" bench/spark/transactions_spark.py --topic "${PREFIX}transactions" \
  --base "$WORK/spark" --checkpoint "$WORK/spark-checkpoint" --pg-url "postgres://postgres@127.0.0.1:54329/postgres" \
  --pg-table "txb_spark_$RUN_ID.transactions_by_account_1m" --ivy "$ROOT/.stack/spark-ivy" >"$WORK/spark.out"

.stack/venv/bin/python - "$WORK" "$RECORDS" <<'PY'
import json, os, sys
from deltalake import DeltaTable
work, records = sys.argv[1], int(sys.argv[2])
rx, sp = (json.load(open(f"{work}/{n}.rss")) for n in ("rxlake", "spark"))
spark_out = json.loads(open(f"{work}/spark.out").read().strip().splitlines()[-1])
def rows(path):
    return DeltaTable(path).to_pyarrow_table(columns=[DeltaTable(path).schema().fields[0].name]).num_rows
r_typed, s_typed = rows(f"{work}/rxlake/transactions"), rows(f"{work}/spark/transactions")
r_win, s_win = rows(f"{work}/rxlake/transactions_by_account_1m"), rows(f"{work}/spark/transactions_by_account_1m")
print(f"{'job':<8} {'seconds':>8} {'records/s':>10} {'peak RSS':>9}  typed rows  windows (delta-rs)")
for name, m, typed, win in (("rxlake", rx, r_typed, r_win), ("spark", sp, s_typed, s_win)):
    print(f"{name:<8} {m['wall_s']:>8.2f} {records / m['wall_s']:>10.0f} {m['peak_tree_rss_mb']:>8.0f}M  {typed:>10}  {win:>7}")
print(f"rxlake/spark: {sp['wall_s'] / rx['wall_s']:.2f}x the throughput at {rx['peak_tree_rss_mb'] / sp['peak_tree_rss_mb']:.2f}x the memory (spark session start-up {spark_out['startup_s']} s included)")
sys.stdout.flush()
os._exit(0)  # deltalake's threads can abort the interpreter's teardown ("terminate called …")
PY
