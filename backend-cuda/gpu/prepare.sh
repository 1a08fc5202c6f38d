#!/usr/bin/env bash
# Builds the folder check.sh needs (default: gpu-carry/, ignored by git): a Java runtime and the
# thin class path (no ND4J natives), well under the device tool's 64 MiB carry limit. The timing
# program (dev.starling.bench.cuda.CudaBenchmark) comes from the bench module's thin jar, which
# needs only the api, the cuda backend and JCuda at run time.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
carry=${1:-$root/gpu-carry}
cd "$root"
mvn -B -ntp -q -pl backend-cuda,bench -am package -DskipTests
mkdir -p "$carry/jars"
rm -f "$carry"/jars/*.jar
cp api/target/starling-api-*.jar conformance/target/starling-conformance-*.jar \
   backend-cuda/target/starling-backend-cuda-*.jar bench/target/starling-bench-*.jar "$carry/jars/"
m2=${M2_REPO:-$HOME/.m2/repository}
cp "$m2"/org/jcuda/jcuda/12.6.0/jcuda-12.6.0.jar \
   "$m2"/org/jcuda/jcuda-natives/12.6.0/jcuda-natives-12.6.0-linux-x86_64.jar "$carry/jars/"
[ -f "$carry/jre.tar.gz" ] || "$root/../shared/tools/make-java-runtime.sh" "$carry/jre.tar.gz"
du -sh "$carry"
unzip -l backend-cuda/target/starling-backend-cuda-*.jar | grep -q kernels.fatbin || { echo "no kernels in the jar: is nvcc on the PATH?" >&2; exit 1; }
