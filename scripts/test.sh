#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, brings the local stack of
# real services up, then lint + type check, marble, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> local stack (and npm packages)"
bash scripts/stack.sh up
# The chaos suite starts brokers of its own from the Kafka jars: present even when `up` found
# a broker it did not start (another checkout's) and so installed none.
bash scripts/stack.sh install kafka

echo "==> current Node (users run the TypeScript sources directly on Node 22.18+)"
RXLAKE_NODE_CURRENT="$(bash scripts/node-current.sh)"
export RXLAKE_NODE_CURRENT
"$RXLAKE_NODE_CURRENT" --version

echo "==> lint + type check + build"
npx eslint .
npx tsc -p tsconfig.json --noEmit
npm run build --silent
node -e "import('./dist/index.js').then((m) => { if (typeof m.fromKafka !== 'function') process.exit(1); })"

echo "==> tests"
mkdir -p .stack
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.stack/vitest-report.json "$@" || status=$?
# One plain closing line: "N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(".stack/vitest-report.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
exit "$status"
