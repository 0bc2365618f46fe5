#!/bin/sh
# Make sure a headless Chromium is there for the HTML report's test: install Debian's chromium if it is missing.
set -eu
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "no chromium, and installing Debian's needs root: apt-get install chromium (its test is skipped until then)" >&2
  exit 0
fi
exec sh "$(dirname "$0")/host-packages.sh" chromium
