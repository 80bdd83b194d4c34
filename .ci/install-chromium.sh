#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing. Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
