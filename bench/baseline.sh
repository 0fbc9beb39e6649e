#!/usr/bin/env bash
# Bronze ingestion, rxlake vs the Python baseline (confluent-kafka + delta-rs), same machine,
# same topic, same run. Each side runs in its own process under /usr/bin/time -v (wall time,
# peak RSS); both tables are read back with delta-rs (scripts/delta_verify.py).
#
#   bash bench/baseline.sh [--records N] [--payload-bytes B] [--partitions P]
#                          [--rxlake-json-only] [--rxlake-node NODE] [--kill-test [--kill-trials K]]
#                          [--spark] [--keep]
#
#   --records N         gps_pings to produce (default 200000; the official run uses 1000000)
#   --rxlake-json-only  run rxlake with DLQ_VALIDATE_SCHEMA=false, i.e. the same validation
#                       work as the baseline (JSON only); by default rxlake runs as shipped
#                       (JSON + schema validation)
#   rxlake runs with NODE_OPTIONS=--max-semi-space-size=8, as `npm run bronze` ships it
#   (override with RX_NODE_OPTIONS=…; RX_NODE_OPTIONS= runs it with Node's defaults)
#   --rxlake-node NODE  run rxlake as `NODE src/pipelines/bronze.ts` (a Node that strips types,
#                       22.18+, e.g. .stack/node-24.9.0/bin/node) instead of through tsx
#   --kill-test         also measure duplicates after kill -9 of the Python baseline: K trials
#                       killed at a random instant, then one crash placed between its Delta
#                       write and its offset commit; each restarted in bounded mode
#   --spark             also run the Spark Structured Streaming baseline (bench/spark: PySpark
#                       local[all cores], Delta sink, trigger availableNow); its peak RSS is the
#                       sum over its processes (JVM + Python driver). Installs .stack/spark-venv
#                       (pyspark, ~320 MB) and the connector jars on first use
#   --keep              keep the temporary tables
#
# Needs the local stack (bash scripts/stack.sh up). Creates .stack/bench-venv on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RECORDS=200000
PAYLOAD=400
PARTITIONS=6
JSON_ONLY=0
RX_NODE=""
KILL_TEST=0
KILL_TRIALS=3
KEEP=0
SPARK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --payload-bytes) PAYLOAD="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --rxlake-json-only) JSON_ONLY=1; shift ;;
    --rxlake-node) RX_NODE="$2"; shift 2 ;;
    --kill-test) KILL_TEST=1; shift ;;
    --kill-trials) KILL_TRIALS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --spark) SPARK=1; shift ;;
    -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[baseline] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- the Python baseline's own venv ----------------------------------------------------------
VENV="$ROOT/.stack/bench-venv"
PY="$VENV/bin/python"
VERIFY_PY="${RXLAKE_PYTHON:-$ROOT/.stack/venv/bin/python}"
if ! { [ -x "$PY" ] && "$PY" -c 'import confluent_kafka, deltalake, pyarrow' >/dev/null 2>&1; }; then
  log "creating $VENV (pip install -r bench/python/requirements.txt)"
  python3 -m venv "$VENV"
  "$PY" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r "$ROOT/bench/python/requirements.txt"
  "$PY" -c 'import confluent_kafka, deltalake, pyarrow' || die "bench venv does not import confluent_kafka, deltalake, pyarrow"
fi
[ -x "$VERIFY_PY" ] || die "no verifier venv at $VERIFY_PY (run bash scripts/stack.sh up venv)"
if [ ! -x /usr/bin/time ]; then
  log "installing Debian 'time' (for /usr/bin/time -v)"
  apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi

SPARK_PY="$ROOT/.stack/spark-venv/bin/python"
if [ "$SPARK" = 1 ] && ! { [ -x "$SPARK_PY" ] && "$SPARK_PY" -c 'import pyspark, delta' >/dev/null 2>&1; }; then
  command -v java >/dev/null || die "--spark needs Java (17) on the PATH"
  log "creating .stack/spark-venv (pip install -r bench/spark/requirements.txt; pyspark is ~320 MB)"
  python3 -m venv "$ROOT/.stack/spark-venv"
  "$SPARK_PY" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r "$ROOT/bench/spark/requirements.txt"
  "$SPARK_PY" -c 'import pyspark, delta' || die "spark venv does not import pyspark, delta"
fi

# --- scratch space, topic ----------------------------------------------------------------------
RUN_ID="$(date +%s)-$RANDOM"
PREFIX="bench-base-$RUN_ID."
TOPIC="${PREFIX}gps_pings"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rxlake-baseline-XXXXXX")"
cleanup() { if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
TSX="$ROOT/node_modules/.bin/tsx"

log "producing $RECORDS gps_pings (~$PAYLOAD B) to $TOPIC ($PARTITIONS partitions)"
"$TSX" src/pipelines/rideshare/generate.ts --topics gps_pings --count "$RECORDS" --payload-bytes "$PAYLOAD" \
  --partitions "$PARTITIONS" --topic-prefix "$PREFIX" --manifest "$WORK/manifest.json" --quiet >&2

# Runs "$@" under /usr/bin/time -v; writes NAME.time (time's report) and NAME.out (stdout).
timed() {
  local name="$1"; shift
  /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
    { cat "$WORK/$name.err" >&2; die "$name failed (see above)"; }
}

# Rows, distinct (partition, offset) pairs and files of a table, as delta-rs reads it.
table_stats() {
  "$PY" - "$1" <<'EOF'
import json, sys
import pyarrow.compute as pc
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
a = t.to_pyarrow_table(columns=["_kafka_partition", "_kafka_offset"])
keys = pc.add(pc.multiply(a["_kafka_partition"].cast("int64"), 1 << 40), a["_kafka_offset"])
distinct = len(pc.unique(keys))
print(json.dumps({"rows": a.num_rows, "distinct": distinct, "duplicates": a.num_rows - distinct,
                  "files": len(t.file_uris()), "version": t.version()}))
EOF
}

# num_rows from the project's verifier; must be RECORDS.
verify() {
  local rows
  rows="$("$VERIFY_PY" scripts/delta_verify.py "$1" --columns _kafka_offset | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["num_rows"])')"
  [ "$rows" = "$RECORDS" ] || die "$2: delta-rs reads $rows rows in $1, expected $RECORDS"
  log "$2: delta-rs reads $rows rows (ok)"
}

# --- (1) the Python baseline -------------------------------------------------------------------
log "(1) Python baseline (confluent-kafka + delta-rs write_deltalake)"
timed py "$PY" bench/python/bronze_baseline.py --topic "$TOPIC" --group "bench-base-py-$RUN_ID" \
  --table "$WORK/py/bronze_gps_pings" --bounded
verify "$WORK/py/bronze_gps_pings" "python"
table_stats "$WORK/py/bronze_gps_pings" >"$WORK/py.stats"

# --- (2) rxlake's bronze pipeline ---------------------------------------------------------------
RX_RUNNER="${RX_NODE:-$TSX}"
log "(2) rxlake bronze pipeline ($(basename "$RX_RUNNER") src/pipelines/bronze.ts --until-caught-up)"
RX_ENV=(BRONZE_TOPICS=gps_pings "KAFKA_TOPIC_PREFIX=$PREFIX" "KAFKA_CONSUMER_GROUP=bench-base-rx-$RUN_ID"
  "DELTA_BASE_PATH=$WORK/rx" HTTP_PORT=0 PROGRESS_INTERVAL_SECONDS=0 "NODE_OPTIONS=${RX_NODE_OPTIONS---max-semi-space-size=8}")
[ "$JSON_ONLY" = 1 ] && RX_ENV+=(DLQ_VALIDATE_SCHEMA=false)
timed rx env "${RX_ENV[@]}" "$RX_RUNNER" src/pipelines/bronze.ts --until-caught-up
verify "$WORK/rx/bronze_gps_pings" "rxlake"
table_stats "$WORK/rx/bronze_gps_pings" >"$WORK/rx.stats"

# --- (2b) optional: the Spark Structured Streaming baseline --------------------------------------
if [ "$SPARK" = 1 ]; then
  log "(2b) Spark Structured Streaming baseline (PySpark, Delta sink, trigger availableNow)"
  timed spark python3 bench/treerss.py "$WORK/spark.rss" "$SPARK_PY" bench/spark/bronze_spark.py --topic "$TOPIC" \
    --table "$WORK/spark/bronze_gps_pings" --checkpoint "$WORK/spark-checkpoint" --ivy "$ROOT/.stack/spark-ivy"
  verify "$WORK/spark/bronze_gps_pings" "spark"
  table_stats "$WORK/spark/bronze_gps_pings" >"$WORK/spark.stats"
fi

# --- (3) optional: duplicates after kill -9 of the baseline -------------------------------------
: >"$WORK/kill.jsonl"
if [ "$KILL_TEST" = 1 ]; then
  base_args=(--topic "$TOPIC" --session-timeout-ms 6000 --bounded)
  py_secs="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/py.out")"
  trial() { # $1 = label, rest = extra baseline args for the first (killed) run; kill delay in $KILL_AFTER
    local label="$1"; shift
    local table="$WORK/kill-$label/bronze_gps_pings" group="bench-base-kill-$label-$RUN_ID"
    local pid status
    "$PY" bench/python/bronze_baseline.py "${base_args[@]}" --group "$group" --table "$table" "$@" \
      >/dev/null 2>"$WORK/kill-$label.err" &
    pid=$!
    if [ -n "${KILL_AFTER:-}" ]; then sleep "$KILL_AFTER"; kill -9 "$pid" 2>/dev/null || true; fi
    status=0; { wait "$pid"; } 2>/dev/null || status=$?
    "$PY" bench/python/bronze_baseline.py "${base_args[@]}" --group "$group" --table "$table" \
      >"$WORK/kill-$label.out" 2>>"$WORK/kill-$label.err" || die "restart after kill ($label) failed"
    "$PY" - "$label" "$status" "${KILL_AFTER:-}" "$(table_stats "$table")" <<'EOF' >>"$WORK/kill.jsonl"
import json, sys
label, status, after, stats = sys.argv[1:5]
d = json.loads(stats)
d.update(trial=label, first_exit=int(status), killed_after_s=float(after) if after else None)
print(json.dumps(d))
EOF
    log "kill test $label: $(tail -n 1 "$WORK/kill.jsonl")"
  }
  for i in $(seq 1 "$KILL_TRIALS"); do
    # a random instant within the baseline's measured run time (0.1 .. 0.9 of it)
    KILL_AFTER="$("$PY" -c 'import random,sys; print(round(float(sys.argv[1]) * random.uniform(0.1, 0.9), 2))' "$py_secs")"
    trial "random$i"
  done
  KILL_AFTER="" trial window --crash-after-writes 1
fi

# --- report ------------------------------------------------------------------------------------
"$PY" - "$WORK" "$RECORDS" "$PAYLOAD" "$PARTITIONS" "$JSON_ONLY" "$("$RX_RUNNER" --version 2>/dev/null | tr "\n" " " || true)NODE_OPTIONS=${RX_NODE_OPTIONS---max-semi-space-size=8}" <<'EOF'
import json, os, re, sys
work, records, payload, partitions, json_only = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
rx_runner = sys.argv[6]
manifest = json.load(open(f"{work}/manifest.json"))
nbytes = manifest["totals"]["bytes"]

def gnu_time(name):
    text = open(f"{work}/{name}.time").read()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)", text).group(1).strip()
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return secs, rss_kb / 1024

rows = {}
names = [("py", "python baseline"), ("rx", "rxlake bronze")]
if os.path.exists(f"{work}/spark.stats"):
    names.append(("spark", "spark streaming"))
for name, label in names:
    wall, rss = gnu_time(name)
    if name == "spark":
        # JVM + Python driver: the summed peak of the process tree, not the largest process.
        rss = json.load(open(f"{work}/spark.rss"))["peak_tree_rss_mb"]
    st = json.load(open(f"{work}/{name}.stats"))
    rows[name] = dict(label=label, wall=wall, rss=rss, files=st["files"], rows=st["rows"], dups=st["duplicates"],
                      rps=records / wall, mbs=nbytes / 2**20 / wall)
py_self = json.loads(open(f"{work}/py.out").read().strip().splitlines()[-1])

print()
print(f"bronze ingestion: {records} gps_pings (~{payload} B, {nbytes / 2**20:.1f} MB of payload), {partitions} partitions, local disk")
print(f"rxlake validation: {'JSON only (DLQ_VALIDATE_SCHEMA=false)' if json_only else 'JSON + schema (defaults)'}; python: JSON only{'; spark: none (stores the value as it comes)' if os.path.exists(f'{work}/spark.stats') else ''}; rxlake runner: {rx_runner}")
hdr = f"{'':18} {'records/s':>10} {'MB/s':>7} {'wall s':>7} {'peak RSS MB':>12} {'files':>6} {'rows':>9} {'dups':>5}"
print(hdr)
for r in rows.values():
    print(f"{r['label']:18} {r['rps']:>10.0f} {r['mbs']:>7.1f} {r['wall']:>7.2f} {r['rss']:>12.0f} {r['files']:>6} {r['rows']:>9} {r['dups']:>5}")
py, rx = rows["py"], rows["rx"]
print(f"ratio rxlake/python: throughput {rx['rps'] / py['rps']:.2f}x, peak RSS {rx['rss'] / py['rss']:.2f}x")
spark_self = None
if "spark" in rows:
    sp = rows["spark"]
    spark_self = json.loads(open(f"{work}/spark.out").read().strip().splitlines()[-1])
    print(f"ratio rxlake/spark:  throughput {rx['rps'] / sp['rps']:.2f}x, peak RSS {rx['rss'] / sp['rss']:.2f}x"
          f" (spark: session start-up {spark_self['startup_s']} s, the query itself {spark_self['seconds']} s ="
          f" {records / spark_self['seconds']:.0f} records/s, {spark_self['batches']} micro-batch(es); rxlake/spark on that:"
          f" {rx['rps'] / (records / spark_self['seconds']):.2f}x)")
print(f"(wall = whole process incl. start-up; the baseline's own in-process figure: {py_self['records_per_s']} records/s over {py_self['seconds']} s, ru_maxrss {py_self['peak_rss_mb']} MB)")
print(f"python: {py_self['writes']} Delta writes took {py_self['write_s']} s, their offset commits {py_self['commit_s'] * 1000:.1f} ms in all"
      f" (a crash inside those commits duplicates the batch just written)")
kills = [json.loads(l) for l in open(f"{work}/kill.jsonl") if l.strip()]
if kills:
    print()
    print("python baseline after kill -9 + restart (at-least-once):")
    for k in kills:
        when = f"killed at {k['killed_after_s']} s" if k["killed_after_s"] is not None else "crash between Delta write and offset commit"
        print(f"  {k['trial']:8} {when:45} rows {k['rows']:>8}  distinct {k['distinct']:>8}  duplicates {k['duplicates']:>7}")
print(json.dumps({"records": records, "payload_bytes": payload, "partitions": partitions, "bytes": nbytes,
                  "rxlake_json_only": json_only, "rxlake_runner": rx_runner, "python": py, "rxlake": rx, "python_self": py_self,
                  "spark": rows.get("spark"), "spark_self": spark_self, "kill_test": kills}))
EOF
