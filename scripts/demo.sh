#!/usr/bin/env bash
# The README's main command: set up, build, and run the paper's pipeline on the bundled sample
# (configs/demo.toml). Outputs in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
./build/aware run configs/demo.toml -o out/demo "$@"
