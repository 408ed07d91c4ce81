#!/usr/bin/env bash
# One entry point for a fresh clone: sets up .venv (once, and again when pyproject.toml changes),
# then runs what was asked.
#   bash dev.sh demo [extra segjax flags]   train the U-Net demo on the built-in shapes data
#   bash dev.sh test [extra pytest args]    run the test suite
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

setup() {
  local extras=$1 stamp="$VENV/.installed-$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # Reinstall only when the declared dependencies changed since the last install.
  local want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[$extras]"
    echo "$want" > "$stamp"
  fi
}

command=${1:-}
shift || true
case "$command" in
  demo)
    setup notebook
    exec "$VENV/bin/segjax" train --config experiments/unet_shapes.py --workdir runs/unet_shapes "$@"
    ;;
  test)
    setup dev
    status=0
    "$VENV/bin/python" -m pytest "$@" || status=$?
    if [ "$status" -eq 5 ]; then
      echo "dev.sh: pytest collected no tests; that is a failure here." >&2
      exit 1
    fi
    exit "$status"
    ;;
  *)
    echo "usage: bash dev.sh demo|test [args]" >&2
    exit 2
    ;;
esac
