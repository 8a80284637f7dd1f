#!/usr/bin/env bash
# Installs the bench's load generators when a machine lacks them: wrk and curl from Debian's packages.
# Idempotent; `npm run bench` calls it only when one is missing.
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "bench: installing ${missing[*]} from Debian" >&2
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
