#!/usr/bin/env bash
# make setup: install everything gsc needs, idempotently.
#   radio side (apt, as root): GNU Radio 3.10 + gr-uhd/gr-iio/gr-zeromq, python3-zmq, pytest
#   data (apt): Fashion-MNIST, KDE wallpapers (photographs); chromium (headless report checks)
#   ML side: .venv with the exact pins of constraints.txt, gsc installed editable
#   GRC: gsc's blocks installed for GNU Radio Companion (flowgraphs/install_blocks.py)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gnuradio python3-zmq python3-pytest python3-pytest-timeout python3-hypothesis python3-yaml
              python3-venv python3-pip dataset-fashion-mnist plasma-workspace-wallpapers
              lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 chromium)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "WARNING: not root or no apt-get; the radio side and data need, as root:"
    say "  apt-get install ${missing[*]}"
    say "continuing with the ML side only"
  fi
elif ! command -v dpkg-query >/dev/null 2>&1; then
  say "WARNING: not a Debian/Ubuntu system: install GNU Radio 3.10 with gr-zeromq, gr-uhd,"
  say "  gr-iio and pyzmq for its Python, and point GSC_RADIO_PYTHON at that interpreter"
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "ERROR: $PYTHON is older than 3.11; set PYTHON=/path/to/python3.11+"
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
say "installing the ML side into $VENV (pins: constraints.txt)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
  -e '.[dev,distributed]' 2>&1 | grep -vE "^(WARNING: Location|  WARNING)" || true
"$VENV/bin/python" -c 'import torch, sionna.phy, gsc_phy' \
  || { say "ERROR: the ML side does not import; see the pip output above"; exit 1; }
# GRC blocks the out-of-tree way: block YAML linked where GNU Radio Companion looks, the
# Python blocks on the radio interpreter's path (gsc.pth), so grcc/GRC need no environment
radio_py=$("$VENV/bin/python" bridge/interpreters.py 2>/dev/null || true)
if [ -n "$radio_py" ]; then
  if [ "$(id -u)" = 0 ]; then
    "$radio_py" flowgraphs/install_blocks.py
  else
    "$radio_py" flowgraphs/install_blocks.py --user
  fi
else
  say "radio side: no interpreter imports GNU Radio yet; GRC blocks not installed"
fi
say "done: $("$VENV/bin/gsc" --version)"
