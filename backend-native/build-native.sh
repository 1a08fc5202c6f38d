#!/usr/bin/env bash
# Compiles the native backend's kernels (src/main/c) into one shared library with the machine's gcc
# (or $CC). Called by Maven (process-classes). Each kernel path is compiled with its own
# instruction-set flags; the JNI file for the x86-64 baseline, so loading the library runs nothing the
# CPU may lack (the backend picks a path by CPUID at run time). Without a compiler, on another
# architecture, or with STARLING_SKIP_NATIVE=1, it writes nothing and succeeds: the backend then
# reports "the native library was not compiled into this jar".
set -euo pipefail
src="$1"
out="$2"
java_home="$3"
cc="${CC:-gcc}"
if [ "${STARLING_SKIP_NATIVE:-0}" = "1" ]; then
  echo "[starling] STARLING_SKIP_NATIVE=1: native kernels not compiled"
  rm -f "$out"
  exit 0
fi
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "[starling] $cc not on the PATH: native kernels not compiled; the native backend will report why"
  rm -f "$out"
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "[starling] native kernels are built for Linux x86-64 only (this is $(uname -s)-$(uname -m)): not compiled"
  rm -f "$out"
  exit 0
fi
# The JDK's include folder: java.home is the JDK itself on Java 9 and later.
inc="$java_home/include"
[ -f "$inc/jni.h" ] || inc="$java_home/../include"
if [ ! -f "$inc/jni.h" ]; then
  echo "[starling] jni.h not found under $java_home: native kernels not compiled"
  rm -f "$out"
  exit 0
fi
newest=$(ls -t "$src"/*.c "$src"/*.h "$0" | head -1)
if [ -f "$out" ] && [ "$out" -nt "$newest" ]; then
  echo "[starling] native kernels up to date: $out"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(-O3 -std=gnu11 -fPIC -fno-math-errno -fno-trapping-math -Wall -Wextra -Werror -I"$inc" -I"$inc/linux")
compile() { # file, flags...
  local f="$1"; shift
  "$cc" "${common[@]}" "$@" -c "$src/$f" -o "$tmp/${f%.c}.o"
}
compile starling_native.c
compile path_portable_fp32.c
compile path_tiles_bf16.c
compile path_avx2_fp32.c -mavx2 -mfma
compile path_avx512_fp32.c -mavx512f -mfma
compile path_avx512bf16.c -mavx512f -mavx512bf16 -mfma
compile path_amx.c -mavx512f -mavx512bf16 -mfma -mamx-tile -mamx-bf16
mkdir -p "$(dirname "$out")"
"$cc" -shared -o "$out.tmp" "$tmp"/*.o -lm -lpthread
mv "$out.tmp" "$out"
echo "[starling] native kernels compiled with $("$cc" --version | head -1): $out ($(stat -c %s "$out") bytes)"
