#!/usr/bin/env bash
# Creates the Python virtualenvs of the baselines if missing (idempotent) and prints their
# interpreters: .stack/bench-venv (confluent-kafka + delta-rs, bench/python) and, with --spark,
# .stack/spark-venv (PySpark + delta-spark, bench/spark; ~320 MB). The same folders as
# bench/baseline.sh uses.
#
#   bash bench/venvs.sh [--spark]     →  prints "python=<path>" and, with --spark, "spark=<path>"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[venvs] %s\n' "$*" >&2; }
ensure() { # venv-dir requirements import-check
  local py="$1/bin/python"
  if ! { [ -x "$py" ] && "$py" -c "$3" >/dev/null 2>&1; }; then
    log "creating $1 (pip install -r $2)"
    python3 -m venv "$1"
    "$py" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r "$2" >&2
    "$py" -c "$3" || { log "$1 does not pass: $3"; exit 1; }
  fi
  echo "$py"
}
echo "python=$(ensure "$ROOT/.stack/bench-venv" "$ROOT/bench/python/requirements.txt" 'import confluent_kafka, deltalake, pyarrow')"
if [ "${1:-}" = --spark ]; then
  command -v java >/dev/null || { log "--spark needs Java (17) on the PATH"; exit 1; }
  echo "spark=$(ensure "$ROOT/.stack/spark-venv" "$ROOT/bench/spark/requirements.txt" 'import pyspark, delta')"
fi
