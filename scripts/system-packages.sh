#!/usr/bin/env bash
# Debian packages the demo and the tests need, installed only when missing (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need_apt=()
# Members of the local Active-Active cluster are real redis-server processes.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# Browser tests drive Debian's chromium through playwright-core (no browser downloads).
[ -x /usr/bin/chromium ] || need_apt+=(chromium fonts-dejavu-core)
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
