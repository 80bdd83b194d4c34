#!/usr/bin/env bash
# Installs what the browser tests need when it is missing: Debian's Chromium, and npm, which fetches
# the pinned axe-core for the accessibility checks (internal/ui/browsertest). Idempotent.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${missing[@]}"
