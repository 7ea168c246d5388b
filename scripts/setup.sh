#!/usr/bin/env bash
# Installs what aware needs to build, test and plot on a fresh Debian 12 machine (run as root or with
# sudo). Boost.Context and Thrust are for the CUDA emulation (tests/cuda_emu). Extras, as arguments:
# `fashion` adds Debian's dataset-fashion-mnist (Appendix C, scripts/reproduce.sh); `fuzz` adds clang and
# its libFuzzer runtime (scripts/fuzz.sh).
# Then the Python package's build and test tools from PyPI (nanobind, scikit-build-core, pytest, and
# uproot/awkward for the ROOT example) into .venv, over Debian's numpy and matplotlib: scripts/build.sh
# builds the extension for .venv/bin/python, and `.venv/bin/pip install .` installs the package there.
set -euo pipefail
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs=(cmake g++ make pkg-config zlib1g-dev libopenblas-dev libopenblas0-openmp libomp-dev
      libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev
      libopenmpi-dev openmpi-bin libhdf5-dev
      libboost-dev libboost-context-dev libthrust-dev
      python3 python3-numpy python3-matplotlib python3-dev python3-venv python3-pip)
for extra in "$@"; do
  case $extra in
    fashion) pkgs+=(dataset-fashion-mnist) ;;
    fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    *) echo "setup: unknown extra '$extra' (fashion or fuzz)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Python tools, pinned: a new release cannot change what the tests run against.
python_tools=(nanobind==3.1.0 scikit-build-core==1.1.2 pytest==9.2.0 tomli-w==1.2.0 tqdm==4.70.1
              uproot==5.7.7 awkward==2.14.0)
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import nanobind, pytest, tomli_w, uproot" 2>/dev/null; then
  echo "setup: a Python environment in .venv (${python_tools[*]})"
  /usr/bin/python3 -m venv --system-site-packages .venv  # Debian's python3, whose numpy apt installed
  .venv/bin/pip install -q --disable-pip-version-check "${python_tools[@]}"
fi
