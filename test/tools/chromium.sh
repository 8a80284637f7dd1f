#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (CORS, POST uploads, the console), when the machine lacks it.
# Idempotent; prints the browser's path. Tests drive it with playwright-core (executablePath /usr/bin/chromium), so
# no browser build is ever downloaded.
set -u
if ! command -v chromium >/dev/null; then
  echo "installing chromium from Debian" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null \
    || { echo "could not install chromium: the browser tests will fail" >&2; exit 1; }
fi
command -v chromium
