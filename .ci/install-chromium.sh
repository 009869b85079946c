#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the report browser test (tests/reports/).
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
command -v chromium
chromium --version || true
