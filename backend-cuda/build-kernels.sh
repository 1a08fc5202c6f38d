#!/usr/bin/env bash
# Compiles the CUDA kernels into one fatbin: machine code for sm_80, sm_86, sm_89, sm_90 and PTX
# (compute_90) for newer GPUs. Called by Maven (process-classes). Without nvcc it writes nothing
# and succeeds: the backend then reports "kernels were not compiled into this jar (no nvcc at build time)".
# Set STARLING_SKIP_NVCC=1 to build a jar without kernels on purpose.
set -euo pipefail
src="$1"
out="$2"
# The generated headers (params.cuh, written by ParamsHeader from KernelParams.Field).
generated="${3:-$(dirname "$src")}"
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
# Up to date when the fatbin is newer than this script and every source beside the .cu (its headers).
stale=0
for f in "$0" "$(dirname "$src")"/*.cu "$(dirname "$src")"/*.cuh "$generated"/*.cuh; do
  if [ -f "$f" ] && ! [ "$out" -nt "$f" ]; then stale=1; fi
done
if [ -f "$out" ] && [ "$stale" = 0 ]; then
  echo "[starling] CUDA kernels up to date: $out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "[starling] $(nvcc --version | tail -1)"
nvcc -fatbin -O3 -std=c++17 -I "$generated" \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_86,code=sm_86 \
  -gencode arch=compute_89,code=sm_89 \
  -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 \
  -Xptxas -v -o "$out.tmp" "$src" 2> "$out.ptxas.log" || { cat "$out.ptxas.log" >&2; exit 1; }
# Resource usage per kernel and architecture, one line each (STYLE: a spill is a regression).
awk '/Compiling entry function/ { split($0, a, "\x27"); fn = a[2]; arch = a[4] }
     /spill stores/ { spill = $1 " B stack, " $5 " B spill stores, " $9 " B spill loads" }
     /Used [0-9]+ registers/ { sub(/.*Used /, ""); printf "[starling] ptxas %-6s %-24s %s; %s\n", arch, fn, $0, spill }' \
  "$out.ptxas.log" | sort -u > "$out.ptxas.txt"
cat "$out.ptxas.txt"
if grep -Eq "[1-9][0-9]* B spill (stores|loads)" "$out.ptxas.txt"; then
  echo "[starling] ptxas: a kernel spills registers (see $out.ptxas.log)"
fi
# The mma kernels' budgets are static_asserts; a spill or a stack frame there, or in a backward
# kernel, fails the build (STARLING_ALLOW_SPILLS=1 to build anyway, e.g. with another nvcc).
if grep -E "starling_(mma|bwd)_" "$out.ptxas.txt" | grep -Eq " [1-9][0-9]* B (stack|spill)"; then
  grep -E "starling_(mma|bwd)_" "$out.ptxas.txt" | grep -E " [1-9][0-9]* B (stack|spill)" >&2
  if [ "${STARLING_ALLOW_SPILLS:-0}" != "1" ]; then
    echo "[starling] an mma or backward kernel spills or uses a stack frame: fix it (or STARLING_ALLOW_SPILLS=1)" >&2
    rm -f "$out.tmp"
    exit 1
  fi
fi
mv "$out.tmp" "$out"
echo "[starling] CUDA kernels compiled: $out ($(stat -c %s "$out") bytes)"
