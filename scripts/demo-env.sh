# Sourced by the demo scripts (scripts/demo*.sh): brings the local stack up and sets what every
# demo shares. `demo_setup EVENTS CORRUPT_FRACTION` takes the demo's defaults for DEMO_EVENTS and
# DEMO_CORRUPT_FRACTION and sets: stack_dir (RXLAKE_STACK_DIR, default .stack), events, corrupt,
# KAFKA_BOOTSTRAP_SERVERS and POSTGRES_URL (default the stack's broker and server, which follow
# KAFKA_PORT and PG_PORT), HTTP_PORT (default 0: any free port), BATCH_INTERVAL_SECONDS and
# PROGRESS_INTERVAL_SECONDS (default 2). A value already in the environment wins.
demo_setup() {
  echo "==> local stack (and npm packages)"
  bash scripts/stack.sh up

  stack_dir="${RXLAKE_STACK_DIR:-.stack}"
  mkdir -p "$stack_dir"
  events="${DEMO_EVENTS:-$1}"
  corrupt="${DEMO_CORRUPT_FRACTION:-$2}"
  export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
  export POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:${PG_PORT:-54329}/postgres}"
  export HTTP_PORT="${HTTP_PORT:-0}"
  export BATCH_INTERVAL_SECONDS="${BATCH_INTERVAL_SECONDS:-2}"
  export PROGRESS_INTERVAL_SECONDS="${PROGRESS_INTERVAL_SECONDS:-2}"
}
