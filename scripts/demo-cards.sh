#!/usr/bin/env bash
# The card medallion job's demo (`npm run demo:cards`): brings the local stack up, produces
# generated card transactions (keyed by card_id, some corrupt, some out of order), runs the cards
# job until caught up, and prints what delta-rs reads back from the bronze, quarantine, silver and
# gold tables, and what PostgreSQL holds of gold.
#
# Environment: DEMO_EVENTS (default 10000), DEMO_CORRUPT_FRACTION (default 0.02), and the job's
# own variables: KAFKA_TOPIC (default here card_transactions: the transactions demo's topic
# carries another contract), OUTPUT_PATH (default ./data/cards), STARTING_OFFSETS (default here
# earliest, so the job reads what the demo produced first), POSTGRES_URL (default the stack's
# server), POSTGRES_SCHEMA (default cards), … The local stack's ports follow KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, S3_PORT, PG_PORT and its folder RXLAKE_STACK_DIR (scripts/stack/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/demo-env.sh
demo_setup 10000 0.02
export KAFKA_TOPIC="${KAFKA_TOPIC:-card_transactions}"
export OUTPUT_PATH="${OUTPUT_PATH:-./data/cards}"
export STARTING_OFFSETS="${STARTING_OFFSETS:-earliest}"
export TRIGGER_INTERVAL="${TRIGGER_INTERVAL:-2 seconds}"
export POSTGRES_SCHEMA="${POSTGRES_SCHEMA:-cards}"

echo "==> producing ${events} card transactions (${corrupt} corrupt) to ${KAFKA_TOPIC}"
npx tsx src/pipelines/cards/generate.ts --count "$events" --corrupt-fraction "$corrupt" --seed "$(date +%s)"

echo "==> cards job until caught up → ${OUTPUT_PATH} (and gold into PostgreSQL, schema ${POSTGRES_SCHEMA})"
echo "    (windows still open at the end are written by a later run, once the watermark passes them)"
node --import tsx src/pipelines/cards.ts --until-caught-up

echo "==> tables as delta-rs and PostgreSQL read them"
node -e '
  const pg = require("pg");
  const pool = new pg.Pool({ connectionString: process.env.POSTGRES_URL });
  pool.query(`SELECT count(*)::int AS windows, coalesce(sum(txn_count), 0)::int AS txns, coalesce(sum(sum_amount), 0)::float8 AS total, max(window_end) AS last FROM "${process.env.POSTGRES_SCHEMA}".gold_card_1m`)
    .then((r) => { const g = r.rows[0]; console.log(JSON.stringify({ ...g, last: g.last && g.last.toISOString() })); return pool.end(); })
    .catch((e) => { console.error(e.message); process.exit(1); });
' | "$stack_dir/venv/bin/python" scripts/cards_summary.py "$OUTPUT_PATH"
