#!/usr/bin/env bash
# Runs the PyTorch anchor (../shared/anchors/torch_reference.py) in a virtual environment made on first
# use (.venv-anchor, with torch and numpy from PyPI). Arguments go to the anchor.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${AWARE_ANCHOR_VENV:-$here/.venv-anchor}"
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
exec "$venv/bin/python3" "$here/../shared/anchors/torch_reference.py" "$@"
