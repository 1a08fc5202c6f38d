#!/usr/bin/env bash
# The measurements of docs/benchmarks.md, "One machine against the Spark job": for each length,
# random inputs, the whole problem on one machine (reference backend, one JVM), then the Spark job in
# local[2] (another JVM), checked against it; then the layout's predictions for more shards.
#
#   spark/bench.sh [WORK_DIR]        (default /tmp/starling-spark-bench; needs ~1 GiB per million tokens)
#
# LENGTHS, HEADS, DIM, SHARDS, MASTERS override the defaults below; SHARDS and MASTERS may list several
# values (each pair is one Spark run), e.g. LENGTHS=65536 SHARDS="1 2 4 8 16" MASTERS="local[1] local[2]".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/starling-spark-bench}
lengths=${LENGTHS:-65536 1048576}
heads=${HEADS:-2}
dim=${DIM:-16}
shard_counts=${SHARDS:-4}
masters=${MASTERS:-local[2]}
pattern='bigbird(block=64, window=3, global=2, random=3)'
cd "$root"
mvn -B -ntp -q -pl spark -am package -DskipTests -Dmaven.javadoc.skip -Dmaven.source.skip \
  org.apache.maven.plugins:maven-dependency-plugin:3.9.0:build-classpath -Dmdep.includeScope=test \
  -Dmdep.outputFile="$root/spark/target/test-classpath.txt"
cp="$root/spark/target/test-classes:$root/spark/target/classes:$(cat "$root/spark/target/test-classpath.txt")"
flags=(-XX:+IgnoreUnrecognizedVMOptions --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED -Djdk.reflect.useDirectMethodHandle=false
  -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.level=warn)
run() { java -Xmx6g "${flags[@]}" -cp "$cp" dev.starling.spark.SparkBenchmark "$@" 2>&1 | { grep -v -E ' (INFO|WARN) ' || true; }; }
for n in $lengths; do
  dir=$work/n$n
  echo "== $n tokens, $heads heads, head dim $dim, $pattern"
  run inputs "$dir" "$n" "$heads" "$dim"
  /usr/bin/time -f 'single: process %e s, max RSS %M KiB' java -Xmx6g -cp "$cp" dev.starling.spark.SparkBenchmark single "$dir" "$pattern"
  for master in $masters; do
    for shards in $shard_counts; do
      /usr/bin/time -f 'spark: process %e s, max RSS %M KiB' java -Xmx6g "${flags[@]}" -cp "$cp" \
        dev.starling.spark.SparkBenchmark spark "$dir" "$pattern" "$shards" "$master" 2>&1 \
        | { grep -v -E ' (INFO|WARN) |^Using Spark' || true; }
    done
  done
  rm -rf "$dir"
done
run predict 1048576 "$heads" "$dim" "$pattern" 1 2 4 8 16 32 64
run predict 16777216 "$heads" "$dim" "$pattern" 16 64
