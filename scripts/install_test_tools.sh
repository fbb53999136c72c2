#!/usr/bin/env bash
# Debian packages some tests ask, installed with apt when missing and we are root; otherwise
# the tests that need them are skipped and say why. Never fatal: the rest of the suite runs.
#   chromium        the dashboard's browser tests (tests/test_web.py, through Playwright)
#   docker-compose  Compose's own check of compose.yaml (tests/test_deploy.py; no daemon needed)
set -uo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "persona: ${missing[*]} missing and no way to install them here (needs root and apt-get): the tests that use them" \
         "will be skipped; install Debian's ${missing[*]} to run them" >&2
    exit 0
fi
echo "persona: installing Debian's ${missing[*]} for the tests (apt-get)"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >/tmp/persona-test-tools-install.log 2>&1; then
    echo "persona: installing ${missing[*]} failed (see /tmp/persona-test-tools-install.log): the tests that use them will be skipped" >&2
fi
exit 0
