#!/usr/bin/env bash
# The cuda backend on a GPU machine, in one go (about 8 minutes on an H100/H200; issue 16):
#   1. the device;
#   2. at once (CPU-bound, light on the GPU): the conformance kit for `cuda` in every declared
#      precision (fp32, tf32, bf16, fp16) with the mma kernels (-Dstarling.cuda.kernels=mma), a
#      second time with every row split into one-block units (the merge kernel on every case),
#      MmaKernelCheck (the mma kernels at head dim 64 and 128, where the kit's head-dim-16 cases do
#      not reach them: every feature, NaN/inf element by element, forward16 bit for bit, misaligned
#      inputs), and FlexAttention's compilation for every timed shape (when python3 has torch);
#   3. timings, device-resident, BigBird (block 64, window 3, global 2, random 3), batch 1, 8 and 16
#      heads, head dim 64 and 128, 4,096 to 131,072 tokens: bf16 old kernels (wmma, whole and split)
#      against the new ones (mma on float32 inputs with the conversion, and on bf16 inputs without),
#      then the new kernels in fp16 and tf32 at 16 heads;
#   4. the PyTorch peers on the same card and layouts: FlexAttention with a BlockMask from the same
#      exported layout, dense SDPA, with the ratio to every Starling variant per row;
#   5. backward (issue 15; the kernels are compiled but were never run before this script): the
#      conformance kit on cuda with -Dstarling.cuda.backward=true (in step 2, conformance-backward.log),
#      BackwardTiming (float32 backward kernels: GPU time, wall time with copies, same bits twice),
#      then flex_backward.py: Starling's and FlexAttention's gradients against float64 at one shape,
#      and FlexAttention's backward timed on the same layouts, with the ratio to Starling's kernels.
# Every log and CSV goes to $OUT (check.log has it all; summary at the end).
#
# usage: backend-cuda/gpu/check.sh CARRY_DIR
#   CARRY_DIR holds jre.tar.gz (a runtime from shared/tools/make-java-runtime.sh; the GPU machine
#   may have no Java) and jars/ (starling-api, starling-conformance, starling-backend-cuda, its
#   test classes for MmaKernelCheck, the thin starling-bench jar for the timing program, jcuda,
#   jcuda-natives). backend-cuda/gpu/prepare.sh builds it.
# Knobs (environment): LENGTHS, HEADS, DIMS, VARIANTS (CudaBenchmark --variants), SPLIT (key blocks
#   per unit in the variants, default 16), REPS, BUDGET_MS, KERNELS=wmma (the kit with today's kernels
#   instead), SKIP_CONFORMANCE=1, SKIP_MMA_CHECK=1, SKIP_TIMING=1, PEERS=0, CONFORMANCE_TIMEOUT,
#   CHECK_TIMEOUT, WARM_TIMEOUT, TIMING_TIMEOUT, PEERS_TIMEOUT (seconds); backward: SKIP_BACKWARD=1,
#   BWD_LENGTHS (default 4096,16384), BWD_HEADS (8,16), BWD_DIMS (64,128), BWD_TIMEOUT, BWD_PEERS_TIMEOUT.
set -uo pipefail
carry=${1:-gpu-carry}
out=${OUT:-/tmp/starling-gpu}
mkdir -p "$out"
exec > >(tee "$out/check.log") 2>&1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

echo "== device ($(date -u +%Y-%m-%dT%H:%MZ))"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
if command -v java >/dev/null 2>&1; then JAVA=java; else
  rt=/tmp/starling-jre; rm -rf "$rt"; mkdir -p "$rt"; tar xzf "$carry/jre.tar.gz" -C "$rt"
  JAVA=$(ls "$rt"/*/bin/java)
fi
"$JAVA" -version 2>&1 | head -1
CP=$(ls "$carry"/jars/*.jar | tr '\n' ':')
kernels=${KERNELS:-mma}
split=${SPLIT:-16}
lengths=${LENGTHS:-4096,16384,65536,131072}
heads=${HEADS:-8,16}
dims=${DIMS:-64,128}
export=/tmp/starling-export
rm -rf "$export"; mkdir -p "$export"
have_torch=0
if [ "${PEERS:-1}" = "1" ] && python3 -c "import torch" 2>/dev/null; then have_torch=1; fi

echo "== in parallel: conformance (kernels=$kernels, whole and split), MmaKernelCheck, FlexAttention compilation"
pids=()
if [ "${SKIP_CONFORMANCE:-0}" != "1" ]; then
  timeout "${CONFORMANCE_TIMEOUT:-300}" "$JAVA" -Dstarling.cuda.kernels="$kernels" -cp "$CP" \
    dev.starling.conformance.ConformanceRunner --backend cuda --quick ${CONFORMANCE_ARGS:-} \
    > "$out/conformance.log" 2>&1 &
  pids+=($!)
  timeout "${CONFORMANCE_TIMEOUT:-300}" "$JAVA" -Dstarling.cuda.kernels="$kernels" -Dstarling.cuda.splitBlocks=1 \
    -cp "$CP" dev.starling.conformance.ConformanceRunner --backend cuda --quick ${CONFORMANCE_ARGS:-} \
    > "$out/conformance-split1.log" 2>&1 &
  pids+=($!)
fi
if [ "${SKIP_BACKWARD:-0}" != "1" ]; then
  # The kit's gradient rules on cuda: the backward kernels run only with the property.
  timeout "${CONFORMANCE_TIMEOUT:-300}" "$JAVA" -Dstarling.cuda.backward=true -Dstarling.cuda.kernels="$kernels" \
    -cp "$CP" dev.starling.conformance.ConformanceRunner --backend cuda --quick ${CONFORMANCE_ARGS:-} \
    > "$out/conformance-backward.log" 2>&1 &
  bwd_pid=$!
fi
if [ "${SKIP_MMA_CHECK:-0}" != "1" ]; then
  timeout "${CHECK_TIMEOUT:-300}" "$JAVA" -Xmx8g -cp "$CP" dev.starling.backend.cuda.MmaKernelCheck \
    > "$out/mma-check.log" 2>&1 &
  pids+=($!)
fi
if [ $have_torch = 1 ]; then
  PYTHONUNBUFFERED=1 timeout "${WARM_TIMEOUT:-300}" python3 "$here/bench/peers/flex_attention_bench.py" --warm-only \
    --export "$export" --lengths "$lengths" --heads "$heads" --dims "$dims" --dtypes bf16 \
    > "$out/peers-warm.log" 2>&1 &
  warm=$!
fi
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
bwd_status=0   # backward apart: its kernels are new and unverified, so its failures do not hide the forward's
[ -n "${bwd_pid:-}" ] && { wait "$bwd_pid" || bwd_status=1; }
for f in conformance conformance-split1 conformance-backward mma-check; do
  [ -f "$out/$f.log" ] && { echo "---- $f"; grep -v "^WARNING: " "$out/$f.log"; }
done
echo "== correctness done ($(elapsed)); exit status so far: $status (backward: $bwd_status)"

if [ "${SKIP_TIMING:-0}" != "1" ]; then
  # FlexAttention may still be compiling (CPU work, one launch per shape): it does not wait for that.
  echo "== timing: bf16, old kernels (wmma) against the new (mma), device-resident ($(elapsed))"
  timeout "${TIMING_TIMEOUT:-240}" "$JAVA" -Xmx64g -cp "$CP" dev.starling.bench.cuda.CudaBenchmark \
    --lengths "$lengths" --heads "$heads" --dims "$dims" --precisions bf16 \
    --variants "${VARIANTS:-wmma,wmma+split$split,mma,mma+split$split,mma16+split$split}" \
    --reps "${REPS:-20}" --budget-ms "${BUDGET_MS:-1200}" --export "$export" --csv "$out/cuda-bf16.csv" 2>&1 \
    | grep -v "^WARNING: "
  echo "== timing: the new kernels in fp16 and tf32, 16 heads ($(elapsed))"
  timeout "${TIMING_TIMEOUT:-240}" "$JAVA" -Xmx64g -cp "$CP" dev.starling.bench.cuda.CudaBenchmark \
    --lengths "$lengths" --heads 16 --dims "$dims" --precisions fp16,tf32 \
    --variants "mma+split$split,mma16+split$split" \
    --reps "${REPS:-20}" --budget-ms "${BUDGET_MS:-1200}" --csv "$out/cuda-fp16-tf32.csv" 2>&1 | grep -v "^WARNING: "
fi

if [ $have_torch = 1 ] && [ "${SKIP_TIMING:-0}" != "1" ]; then
  wait "$warm"; echo "---- FlexAttention compilation ($(elapsed))"; cat "$out/peers-warm.log"
  echo "== peers: FlexAttention (same layout) and SDPA (dense), bf16 ($(elapsed))"
  PYTHONUNBUFFERED=1 timeout "${PEERS_TIMEOUT:-240}" python3 "$here/bench/peers/flex_attention_bench.py" \
    --export "$export" --lengths "$lengths" --heads "$heads" --dims "$dims" --dtypes bf16 \
    --reps "${REPS:-20}" --budget-ms "${BUDGET_MS:-1200}" --starling-csv "$out/cuda-bf16.csv" --csv "$out/peers.csv"
elif [ "${PEERS:-1}" = "1" ]; then
  echo "== peers: skipped (python3 with torch not found)"
fi

if [ "${SKIP_BACKWARD:-0}" != "1" ]; then
  bwd_lengths=${BWD_LENGTHS:-4096,16384}
  bwd_heads=${BWD_HEADS:-8,16}
  bwd_dims=${BWD_DIMS:-64,128}
  echo "== backward: Starling's float32 kernels, BigBird, device time and wall time with copies ($(elapsed))"
  timeout "${BWD_TIMEOUT:-240}" "$JAVA" -Xmx32g -Dstarling.cuda.backward=true -cp "$CP" \
    dev.starling.backend.cuda.BackwardTiming --lengths "$bwd_lengths" --heads "$bwd_heads" --dims "$bwd_dims" \
    --reps "${REPS:-10}" --export "$export" --csv "$out/cuda-backward.csv" 2>&1 | grep -v "^WARNING: "
  [ "${PIPESTATUS[0]}" = "0" ] || bwd_status=1
  if [ $have_torch = 1 ]; then
    echo "== backward peers: gradients against float64, FlexAttention's backward on the same layouts ($(elapsed))"
    PYTHONUNBUFFERED=1 timeout "${BWD_PEERS_TIMEOUT:-300}" python3 "$here/backend-cuda/gpu/flex_backward.py" \
      --export "$export" --lengths "$bwd_lengths" --heads "$bwd_heads" --dims "$bwd_dims" \
      --reps "${REPS:-10}" --starling-csv "$out/cuda-backward.csv" --csv "$out/peers-backward.csv" || bwd_status=1
  fi
fi
[ -n "${warm:-}" ] && kill "$warm" 2>/dev/null
echo "== done ($(elapsed)); correctness exit status: $status; backward (conformance, determinism, agreement): $bwd_status"
exit $(( status | bwd_status ))
