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
    if [ "$extras" = dev ]; then
      install_torch_reference
    fi
    echo "$want" > "$stamp"
  fi
}

# torch is the tests' reference for the weight converters, never a dependency of segjax. A CPU
# build is all they need (pip's default on Linux is the CUDA build, gigabytes larger); where
# neither can be installed, those tests skip and say why.
install_torch_reference() {
  if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    return
  fi
  "$VENV/bin/python" -m pip install --quiet "torch==2.13.0+cpu" 2>/dev/null \
    || "$VENV/bin/python" -m pip install --quiet torch \
    || echo "dev.sh: torch could not be installed; the converter tests will be skipped." >&2
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
