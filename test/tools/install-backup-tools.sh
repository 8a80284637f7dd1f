#!/usr/bin/env bash
# Installs the real backup tools the scoped-credential tests drive, when a machine lacks them:
# restic, rclone and s3cmd from Debian's packages, the AWS CLI from PyPI. Idempotent; prints what it did.
set -u
missing=()
command -v restic >/dev/null || missing+=(restic)
command -v rclone >/dev/null || missing+=(rclone)
command -v s3cmd >/dev/null || missing+=(s3cmd)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null \
    || echo "could not install ${missing[*]}: the backup-tool tests will fail" >&2
fi
if ! command -v aws >/dev/null; then
  echo "installing the AWS CLI from PyPI"
  python3 -m pip install -q awscli || echo "could not install the AWS CLI: the backup-tool tests will fail" >&2
fi
