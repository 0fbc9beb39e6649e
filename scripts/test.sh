#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, brings the local stack of
# real services up, then lint + type check, marble, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund
fi

echo "==> local stack"
bash scripts/stack.sh up

echo "==> lint + type check"
npx eslint .
npx tsc -p tsconfig.json --noEmit

echo "==> tests"
npx vitest run "$@"
