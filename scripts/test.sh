#!/usr/bin/env bash
# make test: the ML-side suite in .venv, then the radio-side suite under the radio interpreter.
# Fails when either fails; "no tests collected" (pytest exit 5) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
rc_all=0

check() {  # name rc
  case "$2" in
    0) echo "== $1: passed" ;;
    5) echo "== $1: FAILED (no tests were collected)"; rc_all=1 ;;
    *) echo "== $1: FAILED (pytest exit $2)"; rc_all=1 ;;
  esac
}

echo "== ML side ($VENV/bin/python)"
"$VENV/bin/python" -m pytest -m "not slow and not radio" "$@"
check "ML-side tests" $?

radio_py=$("$VENV/bin/python" bridge/interpreters.py)
if [ -z "$radio_py" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "== radio side: FAILED (no interpreter imports GNU Radio; make setup as root installs it)"
    rc_all=1
  else
    echo "== radio side: SKIPPED (no interpreter imports GNU Radio; see gsc doctor)"
  fi
else
  echo "== radio side ($radio_py)"
  "$radio_py" -m pytest -p no:cacheprovider -m "(radio or both) and not slow" "$@"
  check "radio-side tests" $?
fi
exit $rc_all
