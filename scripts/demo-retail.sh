#!/usr/bin/env bash
# The retail metrics job's demo (`npm run demo:retail`): brings the local stack up, produces
# generated retail transactions and refunds (some corrupt, some out of order), runs the retail
# job until caught up, and prints what PostgreSQL holds: the three queries' tables and the
# quarantine.
#
# Environment: DEMO_EVENTS (default 6000), DEMO_CORRUPT_FRACTION (default 0.02), and the job's own
# variables: KAFKA_TOPIC (default here retail_transactions) and KAFKA_TOPIC_REFUNDS (default here
# retail_refunds: the transactions demo's topics carry another contract), POSTGRES_SCHEMA (default
# retail), PG_HOST, PG_PORT, PG_DB, PG_USER, … The local stack's ports follow KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, S3_PORT, PG_PORT and its folder RXLAKE_STACK_DIR (scripts/stack/README.md);
# KAFKA_BOOTSTRAP and PG_HOST/PG_PORT default to that stack's broker and server.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/demo-env.sh
demo_setup 6000 0.02
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:${KAFKA_PORT:-9092}}"
export KAFKA_TOPIC="${KAFKA_TOPIC:-retail_transactions}"
export KAFKA_TOPIC_REFUNDS="${KAFKA_TOPIC_REFUNDS:-retail_refunds}"
export PG_HOST="${PG_HOST:-127.0.0.1}"
export PG_PORT="${PG_PORT:-54329}"
export PG_DB="${PG_DB:-postgres}"
export POSTGRES_SCHEMA="${POSTGRES_SCHEMA:-retail}"

echo "==> producing ${events} events (${corrupt} corrupt) to ${KAFKA_TOPIC} and ${KAFKA_TOPIC_REFUNDS}"
npx tsx src/pipelines/retail/generate.ts --count "$events" --corrupt-fraction "$corrupt" --seed "$(date +%s)"

echo "==> retail job until caught up → PostgreSQL ${PG_HOST}:${PG_PORT}/${PG_DB}, schema ${POSTGRES_SCHEMA}"
echo "    (windows still open at the end are written by a later run, once the watermark passes them)"
node --import tsx src/pipelines/retail.ts --until-caught-up

echo "==> tables as PostgreSQL holds them"
node -e '
  const pg = require("pg");
  const e = process.env;
  const pool = new pg.Pool({ host: e.PG_HOST, port: Number(e.PG_PORT), database: e.PG_DB, user: e.PG_USER || "postgres", password: e.PG_PASSWORD });
  const s = `"${e.POSTGRES_SCHEMA}"`;
  const one = async (sql) => (await pool.query(sql)).rows[0];
  (async () => {
    const tx = await one(`SELECT count(*)::int AS n, coalesce(sum(amount), 0)::float8 AS total FROM ${s}.transactions`);
    const rf = await one(`SELECT count(*)::int AS n, coalesce(sum(amount), 0)::float8 AS total, count(reason)::int AS with_reason FROM ${s}.refunds`);
    const w = await one(`SELECT count(*)::int AS n, count(DISTINCT product_id)::int AS products, coalesce(sum(transaction_count), 0)::int AS txns, coalesce(sum(total_revenue), 0)::float8 AS revenue, min(window_start) AS first, max(window_end) AS last FROM ${s}.product_metrics_minute`);
    const q = (await pool.query(`SELECT error_type, count(*)::int AS n FROM ${s}.quarantine GROUP BY 1 ORDER BY 1`)).rows;
    const top = (await pool.query(`SELECT product_id, sum(total_revenue)::float8 AS revenue, sum(transaction_count)::int AS txns FROM ${s}.product_metrics_minute GROUP BY 1 ORDER BY 2 DESC LIMIT 3`)).rows;
    const f = (x) => x.toFixed(2).padStart(12);
    console.log(`${"table".padEnd(24)} ${"rows".padStart(7)} ${"amount".padStart(12)}`);
    console.log(`${"transactions".padEnd(24)} ${String(tx.n).padStart(7)} ${f(tx.total)}`);
    console.log(`${"refunds".padEnd(24)} ${String(rf.n).padStart(7)} ${f(rf.total)}  (${rf.with_reason} with a reason)`);
    console.log(`${"product_metrics_minute".padEnd(24)} ${String(w.n).padStart(7)} ${f(w.revenue)}  ${w.products} products, ${w.txns} transactions in closed windows, ${w.first ? w.first.toISOString() : "-"} .. ${w.last ? w.last.toISOString() : "-"}`);
    console.log(`${"quarantine".padEnd(24)} ${String(q.reduce((n, r) => n + r.n, 0)).padStart(7)}               ${q.map((r) => `${r.error_type}=${r.n}`).join(", ") || "-"}`);
    console.log("");
    console.log("top products by revenue (closed windows): " + top.map((t) => `${t.product_id} ${t.revenue.toFixed(2)} (${t.txns})`).join(", "));
    await pool.end();
  })().catch((err) => { console.error(err.message); process.exit(1); });
'
