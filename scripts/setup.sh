#!/usr/bin/env bash
# Installs what aware needs to build and test on a fresh Debian 12 machine (run as root or with sudo).
set -euo pipefail
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs=(cmake g++ make pkg-config zlib1g-dev libopenblas-dev libopenblas0-openmp libomp-dev
      libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev
      libopenmpi-dev openmpi-bin libhdf5-dev
      python3 python3-numpy)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
