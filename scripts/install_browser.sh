#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the report test (tests/test_report.py), if it is missing.
# Only as root (apt-get); otherwise say what to run and exit 0 so the test simply skips.
set -euo pipefail

for exe in chromium chromium-browser google-chrome; do
    if command -v "$exe" >/dev/null 2>&1; then
        echo "browser present: $(command -v "$exe")"
        exit 0
    fi
done

if [ "$(id -u)" -ne 0 ]; then
    echo "chromium missing and not root: run 'sudo apt-get install -y chromium' (the report browser test skips without it)" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-dejavu-core
echo "installed: $(command -v chromium)"
