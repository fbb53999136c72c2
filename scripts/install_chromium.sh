#!/usr/bin/env bash
# Chromium for the dashboard's browser tests (tests/test_web.py drives it through Playwright).
# Debian's package, installed with apt when missing and we are root; otherwise the tests
# that need it are skipped and say why. Never fatal: the rest of the suite runs either way.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "persona: no Chromium and no way to install it here (needs root and apt-get): the browser tests will be skipped;" \
         "install Debian's 'chromium' package to run them" >&2
    exit 0
fi
echo "persona: installing Debian's chromium for the browser tests (apt-get)"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/tmp/persona-chromium-install.log 2>&1; then
    echo "persona: installing chromium failed (see /tmp/persona-chromium-install.log): the browser tests will be skipped" >&2
fi
exit 0
