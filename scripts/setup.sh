#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (run as root): the system packages the demo and
# the tests need, then the locked npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
npm ci --no-audit --no-fund
