#!/usr/bin/env bash
# Compiles the CUDA kernels into one fatbin: machine code for sm_80, sm_86, sm_89, sm_90 and PTX
# (compute_90) for newer GPUs. Called by Maven (process-classes). Without nvcc it writes nothing
# and succeeds: the backend then reports "kernels were not compiled into this jar (no nvcc at build time)".
# Set STARLING_SKIP_NVCC=1 to build a jar without kernels on purpose.
set -euo pipefail
src="$1"
out="$2"
if [ "${STARLING_SKIP_NVCC:-0}" = "1" ]; then
  echo "[starling] STARLING_SKIP_NVCC=1: CUDA kernels not compiled"
  rm -f "$out"
  exit 0
fi
if ! command -v nvcc >/dev/null 2>&1; then
  echo "[starling] nvcc not on the PATH: CUDA kernels not compiled; the cuda backend will report why"
  rm -f "$out"
  exit 0
fi
if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ]; then
  echo "[starling] CUDA kernels up to date: $out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "[starling] $(nvcc --version | tail -1)"
nvcc -fatbin -O3 -std=c++17 \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_86,code=sm_86 \
  -gencode arch=compute_89,code=sm_89 \
  -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 \
  -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
echo "[starling] CUDA kernels compiled: $out ($(stat -c %s "$out") bytes)"
