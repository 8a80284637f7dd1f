#!/usr/bin/env bash
# Builds the MinIO server the upstream tests run against (once; later runs reuse it) and prints its path.
# The binary and Go's caches stay outside the repository: $ANVIL_CACHE/bin/minio (default ~/.cache/anvil/bin/minio).
# MINIO_VERSION picks another module version (a pseudo-version or @latest); the default is the one CI was proven on.
set -euo pipefail
BIN_DIR="${ANVIL_CACHE:-$HOME/.cache/anvil}/bin"
BIN="$BIN_DIR/minio"
VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "minio.sh: go is not installed; cannot build MinIO" >&2; exit 1; }
mkdir -p "$BIN_DIR"
echo "minio.sh: building github.com/minio/minio@$VERSION into $BIN_DIR (several minutes, once)" >&2
started=$(date +%s)
# Outside any module, so the repository's files never take part; -mod=mod lets go resolve minio's own go.mod.
(cd "$(mktemp -d)" && GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install "github.com/minio/minio@$VERSION") >&2
echo "minio.sh: built in $(( $(date +%s) - started ))s" >&2
echo "$BIN"
