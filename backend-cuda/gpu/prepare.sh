#!/usr/bin/env bash
# Builds the folder check.sh needs (default: gpu-carry/, ignored by git): a Java runtime and the
# thin class path (no ND4J natives), well under the device tool's 64 MiB carry limit. The timing
# program (dev.starling.bench.cuda.CudaBenchmark) comes from the bench module's thin jar, which
# needs only the api, the cuda backend and JCuda at run time; the mma kernel check
# (dev.starling.backend.cuda.MmaKernelCheck) from the cuda backend's test classes, packed here.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
carry=${1:-$root/gpu-carry}
cd "$root"
mvn -B -ntp -q -pl backend-cuda,bench -am package -DskipTests
mkdir -p "$carry/jars"
rm -f "$carry"/jars/*.jar
# The main jars only (not -sources, -javadoc, or a shaded tool jar).
for m in api/target/starling-api conformance/target/starling-conformance backend-cuda/target/starling-backend-cuda \
         bench/target/starling-bench; do
  cp "$m"-*-SNAPSHOT.jar "$carry/jars/" 2>/dev/null || cp "$(ls "$m"-*.jar | grep -v -e sources -e javadoc | head -1)" "$carry/jars/"
done
jar cf "$carry/jars/starling-backend-cuda-checks.jar" -C backend-cuda/target/test-classes dev
m2=${M2_REPO:-$HOME/.m2/repository}
cp "$m2"/org/jcuda/jcuda/12.6.0/jcuda-12.6.0.jar \
   "$m2"/org/jcuda/jcuda-natives/12.6.0/jcuda-natives-12.6.0-linux-x86_64.jar "$carry/jars/"
[ -f "$carry/jre.tar.gz" ] || "$root/../shared/tools/make-java-runtime.sh" "$carry/jre.tar.gz"
du -sh "$carry"
unzip -l "$carry"/jars/starling-backend-cuda-0*.jar > "$carry/backend-jar.txt"
grep -q kernels.fatbin "$carry/backend-jar.txt" || { echo "no kernels in the jar: is nvcc on the PATH?" >&2; exit 1; }
rm -f "$carry/backend-jar.txt"
