#!/usr/bin/env bash
# The cuda backend on a GPU machine, in one go (well inside 10 minutes on an H100/H200):
#   1. the device, 2. the conformance kit for `cuda` in every declared precision (fp32, tf32, bf16),
#   3. BigBird timings (block 64, window 3, global 2, random 3; batch 1; 8 and 16 heads; head dim
#      64 and 128; 4,096 to 65,536 tokens), 4. the PyTorch peers on the same card when python3 with
#      torch is there (FlexAttention with the same block layout, dense SDPA) and their agreement.
#
# usage: backend-cuda/gpu/check.sh CARRY_DIR
#   CARRY_DIR holds jre.tar.gz (a runtime from shared/tools/make-java-runtime.sh; the GPU machine
#   may have no Java) and jars/ (starling-api, starling-conformance, starling-backend-cuda, the thin
#   starling-bench jar for the timing program, jcuda, jcuda-natives). backend-cuda/gpu/prepare.sh
#   builds it. The log is also written to $OUT/check.log.
# Split rows (-Dstarling.cuda.splitBlocks, off by default): SPLIT_CHECK=1 (default) runs the
#   conformance kit a second time with every row split into one-block units, so the merge kernel
#   runs on every case; SPLIT_BLOCKS=N times with rows split into units of N key blocks.
set -uo pipefail
carry=${1:-gpu-carry}
out=${OUT:-/tmp/starling-gpu}
mkdir -p "$out"
exec > >(tee "$out/check.log") 2>&1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

echo "== device ($(date -u +%Y-%m-%dT%H:%MZ))"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if command -v java >/dev/null 2>&1; then JAVA=java; else
  rt=/tmp/starling-jre; rm -rf "$rt"; mkdir -p "$rt"; tar xzf "$carry/jre.tar.gz" -C "$rt"
  JAVA=$(ls "$rt"/*/bin/java)
fi
"$JAVA" -version 2>&1 | head -1
CP=$(ls "$carry"/jars/*.jar | tr '\n' ':')

echo "== conformance: cuda"
"$JAVA" -cp "$CP" dev.starling.conformance.ConformanceRunner --backend cuda ${CONFORMANCE_ARGS:-}
conformance=$?
if [ "${SPLIT_CHECK:-1}" = "1" ]; then
  echo "== conformance: cuda, rows split into one-block units (-Dstarling.cuda.splitBlocks=1)"
  "$JAVA" -Dstarling.cuda.splitBlocks=1 -cp "$CP" dev.starling.conformance.ConformanceRunner --backend cuda \
    ${CONFORMANCE_ARGS:-}
  split=$?
  [ $conformance -eq 0 ] && conformance=$split
fi

echo "== timing: cuda"
timeout ${TIMING_TIMEOUT:-180} "$JAVA" -Xmx48g ${SPLIT_BLOCKS:+-Dstarling.cuda.splitBlocks=$SPLIT_BLOCKS} \
  -cp "$CP" dev.starling.bench.cuda.CudaBenchmark \
  --lengths ${LENGTHS:-4096,16384,65536} --heads ${HEADS:-8,16} --dims ${DIMS:-64,128} \
  --precisions ${PRECISIONS:-fp32,tf32,bf16} --reps ${REPS:-30} --export /tmp/starling-export

if python3 -c "import torch" 2>/dev/null && [ "${PEERS:-1}" = "1" ]; then
  echo "== peers: FlexAttention and SDPA"
  PYTHONUNBUFFERED=1 timeout ${PEERS_TIMEOUT:-240} python3 "$here/bench/peers/flex_attention_bench.py" \
    --export /tmp/starling-export --lengths ${LENGTHS:-4096,16384,65536} --heads ${PEER_HEADS:-8,16} \
    --dims ${PEER_DIMS:-64,128} --dtypes ${PEER_DTYPES:-bf16,fp32} --reps ${REPS:-30}
fi
echo "== conformance exit code: $conformance"
exit $conformance
