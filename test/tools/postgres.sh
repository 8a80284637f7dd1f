#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries the policy-store tests run (initdb, postgres) are on this machine,
# installing Debian's postgresql when they are not, and prints their directory. Idempotent. The tests start their own
# throwaway cluster on a loopback port (test/helpers/postgres.ts); Debian's own cluster is never used or started.
set -u
find_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null && command -v postgres >/dev/null && { dirname "$(command -v postgres)"; return 0; }
  return 1
}
if ! find_bin >/dev/null; then
  echo "postgres.sh: installing postgresql from Debian" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  # policy-rc.d keeps the package from starting Debian's own cluster; the tests need only the binaries.
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -q postgresql >/dev/null \
    || { echo "postgres.sh: could not install postgresql: the PostgreSQL tests will fail" >&2; exit 1; }
fi
find_bin
