#!/usr/bin/env bash
# Installs what aware needs to build, test and plot on a fresh Debian 12 machine (run as root or with
# sudo). Boost.Context and Thrust are for the CUDA emulation (tests/cuda_emu). Extras, as arguments:
# `fashion` adds Debian's dataset-fashion-mnist (Appendix C, scripts/reproduce.sh); `fuzz` adds clang and
# its libFuzzer runtime (scripts/fuzz.sh).
set -euo pipefail
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs=(cmake g++ make pkg-config zlib1g-dev libopenblas-dev libopenblas0-openmp libomp-dev
      libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev
      libopenmpi-dev openmpi-bin libhdf5-dev
      libboost-dev libboost-context-dev libthrust-dev
      python3 python3-numpy python3-matplotlib)
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
