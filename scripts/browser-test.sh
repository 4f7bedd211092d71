#!/usr/bin/env bash
# The browser test of make test: Debian's Chromium and ChromeDriver (installed here if missing),
# Selenium from .venv, the sandbox page after a demo run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  echo "==> installing Debian's chromium and chromium-driver"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
scripts/with-moto.sh python -m pytest -q tests/browser
