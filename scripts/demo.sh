#!/usr/bin/env bash
# The README's main-job command (`npm run demo`): brings the local stack up, produces a few
# thousand rideshare events (some corrupt) to the eight topics, runs the bronze pipeline until
# caught up into a local folder, and prints what delta-rs reads back from each table.
#
# Environment: DEMO_EVENTS (events per topic, default 500), DEMO_CORRUPT_FRACTION (default 0.05),
# DELTA_BASE_PATH (default ./data/bronze), plus everything the bronze pipeline reads. The local
# stack's ports follow KAFKA_PORT, KAFKA_CONTROLLER_PORT, S3_PORT, PG_PORT and its folder
# RXLAKE_STACK_DIR (scripts/stack/README.md); KAFKA_BOOTSTRAP_SERVERS defaults to that broker.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/demo-env.sh
demo_setup 500 0.05
export DELTA_BASE_PATH="${DELTA_BASE_PATH:-./data/bronze}"

# The tables remember the Kafka offsets they hold; a new Kafka cluster (e.g. after
# `stack.sh reset`) restarts offsets at 0, which the bronze job refuses (it would skip new
# records as already written). The demo's own local tables are then moved aside.
case "$DELTA_BASE_PATH" in
  s3://*) ;;
  *)
    cluster=$(node -e "
      const { Kafka, logLevel } = require('kafkajs');
      const admin = new Kafka({ brokers: process.env.KAFKA_BOOTSTRAP_SERVERS.split(','), logLevel: logLevel.NOTHING }).admin();
      admin.connect().then(() => admin.describeCluster()).then((c) => { console.log(c.clusterId); return admin.disconnect(); });
    ")
    marker="$DELTA_BASE_PATH/.kafka-cluster-id"
    if [ -d "$DELTA_BASE_PATH" ] && [ "$(cat "$marker" 2>/dev/null)" != "$cluster" ]; then
      aside="${DELTA_BASE_PATH%/}.before-$(date +%Y%m%d-%H%M%S)"
      echo "==> ${DELTA_BASE_PATH} was filled from another Kafka cluster: moved to ${aside}"
      mv "$DELTA_BASE_PATH" "$aside"
    fi
    mkdir -p "$DELTA_BASE_PATH"
    echo "$cluster" >"$marker"
    ;;
esac

echo "==> producing ${events} events per topic (${corrupt} corrupt) to 8 topics"
npx tsx src/pipelines/rideshare/generate.ts --count "$events" --corrupt-fraction "$corrupt" --seed "$(date +%s)" \
  --manifest "$stack_dir/demo-manifest.json"

echo "==> bronze pipeline until caught up → ${DELTA_BASE_PATH}"
# A smaller V8 young generation: same speed, ~90 MB less peak memory (see README, "Memory").
node --max-semi-space-size=8 --import tsx src/pipelines/bronze.ts --until-caught-up

echo "==> tables as delta-rs reads them (${DELTA_BASE_PATH})"
"$stack_dir/venv/bin/python" scripts/bronze_summary.py "$DELTA_BASE_PATH"
