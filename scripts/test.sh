#!/usr/bin/env bash
# The README's test command: set up, build, and run every test suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
