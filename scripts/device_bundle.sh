#!/usr/bin/env bash
# Builds what a lent GPU machine runs (it reaches no package registry and lacks Debian's libraries) into
# device.tar.xz: the CUDA executables (aware, aware_throughput, test_cuda, bench_cuda, bench_scan),
# stripped, with the non-CUDA shared libraries they need in lib/ (found through their run path
# $ORIGIN/../lib). The CUDA libraries (cudart, cuBLAS, cuDNN, NCCL) are the machine's own: see
# scripts/gpu_check.sh. Built for x86-64-v3 (the GPU host's CPU is not this one), without MPI and HDF5.
# Usage: scripts/device_bundle.sh   (then carry device.tar.xz; it is git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v nvcc > /dev/null || { echo "device_bundle: nvcc not found (CUDA toolkit)"; exit 1; }
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DAWARE_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3 \
  -DAWARE_WITH_MPI=OFF -DAWARE_WITH_HDF5=OFF -DAWARE_PYTHON=OFF > build-device.log 2>&1 || { tail -30 build-device.log; exit 1; }
targets=(aware aware_throughput test_cuda bench_cuda bench_scan)
cmake --build build-device -j"$(nproc)" --target "${targets[@]}" >> build-device.log 2>&1 || { tail -30 build-device.log; exit 1; }
rm -rf device && mkdir -p device/bin device/lib
for t in "${targets[@]}"; do cp "build-device/$t" device/bin/ && strip device/bin/"$t"; done
# The shared libraries that are neither the C library's nor CUDA's.
for t in "${targets[@]}"; do ldd "device/bin/$t"; done | awk '/=>/ {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libstdc++*|libgcc_s*|ld-linux*) ;;
    libcuda*|libcublas*|libcudnn*|libnccl*|libnvrtc*|libnvJitLink*) ;;
    *) cp -L "$lib" device/lib/ ;;
  esac
done
tar -cJf device.tar.xz device
echo "device_bundle: device.tar.xz ($(du -h device.tar.xz | cut -f1)): $(ls device/bin | tr '\n' ' ')"
