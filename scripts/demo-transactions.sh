#!/usr/bin/env bash
# The transactions job's demo (`npm run demo:transactions`): brings the local stack up, produces
# generated transactions and refunds (some corrupt, some out of order), runs the transactions
# pipeline until caught up, and prints what delta-rs reads back and what PostgreSQL holds.
#
# Environment: DEMO_EVENTS (events per topic, default 3000), DEMO_CORRUPT_FRACTION (default
# 0.02), DELTA_BASE_PATH (default ./data/transactions), plus everything the pipeline reads. The
# local stack's ports follow KAFKA_PORT, KAFKA_CONTROLLER_PORT, S3_PORT, PG_PORT and its folder
# RXLAKE_STACK_DIR (scripts/stack/README.md); KAFKA_BOOTSTRAP_SERVERS and POSTGRES_URL default
# to that stack's broker and server.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/demo-env.sh
demo_setup 3000 0.02
export DELTA_BASE_PATH="${DELTA_BASE_PATH:-./data/transactions}"
export POSTGRES_SCHEMA="${POSTGRES_SCHEMA:-${PIPELINE_ID:-transactions}}"

echo "==> producing ${events} events per topic (${corrupt} corrupt) to transactions and refunds"
npx tsx src/pipelines/transactions/generate.ts --count "$events" --corrupt-fraction "$corrupt" --seed "$(date +%s)"

echo "==> transactions pipeline until caught up → ${DELTA_BASE_PATH} and PostgreSQL"
echo "    (windows still open at the end are written by a later run, once the watermark passes them)"
node --import tsx src/pipelines/transactions.ts --until-caught-up

echo "==> tables as delta-rs and PostgreSQL read them"
node -e '
  const pg = require("pg");
  const pool = new pg.Pool({ connectionString: process.env.POSTGRES_URL });
  (async () => {
    const out = {};
    for (const t of ["transactions_by_account_1m", "refunds_by_account_1m"]) {
      const r = await pool.query(`SELECT count(*)::int AS windows, coalesce(sum(event_count), 0)::int AS events, coalesce(sum(amount_sum), 0)::float8 AS total, max(window_end) AS last FROM "${process.env.POSTGRES_SCHEMA}"."${t}"`);
      out[t] = { ...r.rows[0], last: r.rows[0].last && r.rows[0].last.toISOString() };
    }
    console.log(JSON.stringify(out));
    await pool.end();
  })().catch((e) => { console.error(e.message); process.exit(1); });
' | "$stack_dir/venv/bin/python" scripts/transactions_summary.py "$DELTA_BASE_PATH"
