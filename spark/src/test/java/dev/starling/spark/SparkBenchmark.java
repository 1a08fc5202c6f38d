package dev.starling.spark;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import dev.starling.backend.reference.ReferenceBackend;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.apache.spark.sql.SparkSession;

/**
 * The measurements of docs/benchmarks.md ("One machine against the Spark job"), each mode in its
 * own JVM (spark/bench.sh runs them):
 * <ul>
 *   <li>{@code inputs DIR N H D} writes random normal {@code q, k, v [1, H, N, D]} and a manifest;</li>
 *   <li>{@code single DIR PATTERN} computes the whole problem with the reference backend in this JVM;</li>
 *   <li>{@code spark DIR PATTERN SHARDS MASTER} runs the job and checks it against {@code single}'s output;</li>
 *   <li>{@code predict N H D PATTERN S...} prints the shuffle volume and shard sizes the layout predicts.</li>
 * </ul>
 */
public final class SparkBenchmark {
    private SparkBenchmark() {
    }

    /**
     * Runs one mode.
     *
     * @param args the mode and its arguments
     * @throws Exception on any failure
     */
    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "inputs" -> inputs(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]));
            case "single" -> single(Path.of(args[1]), args[2]);
            case "spark" -> spark(Path.of(args[1]), args[2], Integer.parseInt(args[3]), args[4]);
            case "predict" -> predict(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]),
                    args[4], java.util.Arrays.stream(args, 5, args.length).mapToInt(Integer::parseInt).toArray());
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    private static void inputs(Path dir, int n, int heads, int dim) throws IOException {
        Files.createDirectories(dir);
        SplittableRandom rnd = new SplittableRandom(19);
        for (String name : new String[] {"q", "k", "v"}) {
            try (OutputStream o = new java.io.BufferedOutputStream(Files.newOutputStream(dir.resolve(name + ".npy")), 1 << 20)) {
                o.write(NpyArray.headerBytes("<f4", 1, heads, n, dim));
                ByteBuffer b = ByteBuffer.allocate(4 * dim).order(ByteOrder.LITTLE_ENDIAN);
                for (long i = 0; i < (long) heads * n; i++) {
                    b.clear();
                    for (int d = 0; d < dim; d++) {
                        b.putFloat((float) gaussian(rnd));
                    }
                    o.write(b.array());
                }
            }
        }
        Files.writeString(dir.resolve("manifest.jsonl"), "{\"id\": \"n" + n + "\", \"q\": \"" + dir.resolve("q.npy")
                + "\", \"k\": \"" + dir.resolve("k.npy") + "\", \"v\": \"" + dir.resolve("v.npy") + "\", \"out\": \""
                + dir.resolve("spark-out.npy") + "\", \"lse\": \"" + dir.resolve("spark-lse.npy") + "\"}\n");
    }

    private static double gaussian(SplittableRandom rnd) {
        double u = rnd.nextDouble();
        double v = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }

    private static Tensor read(Path file) throws IOException {
        NpyArray a = NpyArray.read(file);
        int[] s = a.shape();
        return Tensor.bhsd(a.toFloats(), s[0], s[1], s[2], s[3]);
    }

    private static void single(Path dir, String pattern) throws Exception {
        HeapSampler heap = HeapSampler.start();
        long t0 = System.nanoTime();
        Tensor q = read(dir.resolve("q.npy"));
        Tensor k = read(dir.resolve("k.npy"));
        Tensor v = read(dir.resolve("v.npy"));
        AttentionProblem p = AttentionProblem.builder().batch(q.batch()).heads(q.heads()).kvHeads(k.heads())
                .queryLength(q.length()).keyLength(k.length()).headDim(q.dim()).valueDim(v.dim()).build();
        BlockLayout layout = Starling.layout(p, Patterns.parse(pattern));
        Tensor out = Tensor.zeros(q.layout(), p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
        float[] lse = new float[p.lseSize()];
        long t1 = System.nanoTime();
        try (AttentionPlan plan = new ReferenceBackend().plan(p, layout)) {
            plan.forward(q, k, v, out, lse);
        }
        long t2 = System.nanoTime();
        NpyArray.ofFloats(out.data(), p.batch(), p.queryHeads(), p.queryLength(), p.valueDim())
                .write(dir.resolve("single-out.npy"));
        NpyArray.ofFloats(lse, p.batch(), p.queryHeads(), p.queryLength()).write(dir.resolve("single-lse.npy"));
        long t3 = System.nanoTime();
        long arrays = 4L * (q.data().length + k.data().length + v.data().length + out.data().length + lse.length)
                + layout.memoryBytes();
        System.out.printf(Locale.ROOT, "single: %s, %s%n", p, pattern);
        System.out.printf(Locale.ROOT, "single: read %.1f s, forward %.1f s, write %.1f s, total %.1f s; "
                        + "working set %.1f MiB, JVM heap peak (sampled) %.1f MiB%n", (t1 - t0) / 1e9, (t2 - t1) / 1e9,
                (t3 - t2) / 1e9, (t3 - t0) / 1e9, arrays / 1048576.0, heap.stop() / 1048576.0);
    }

    private static void spark(Path dir, String pattern, int shards, String master) throws Exception {
        HeapSampler heap = HeapSampler.start();
        long t0 = System.nanoTime();
        SparkSession spark = SparkSession.builder().appName("starling-benchmark").master(master)
                .config("spark.ui.enabled", "false").getOrCreate();
        long t1 = System.nanoTime();
        try {
            List<Sequence> sequences = ShardedAttention.readManifest(spark, dir.resolve("manifest.jsonl").toString());
            JobReport report = ShardedAttention.builder().pattern(pattern).shards(shards).build().run(spark, sequences);
            System.out.printf(Locale.ROOT, "spark %s, %d shards: session start %.1f s%n", master, shards, (t1 - t0) / 1e9);
            System.out.print(report.format());
            long maxRun = 0;
            long sumRun = 0;
            for (JobReport.ShardTask t : report.shardTasks()) {
                maxRun = Math.max(maxRun, t.spark().runMillis());
                sumRun += t.spark().runMillis();
            }
            long outRun = report.outputTasks().stream().mapToLong(TaskMetricsListener.TaskRecord::runMillis).sum();
            System.out.printf(Locale.ROOT, "spark: job %.1f s; shard tasks: longest %.1f s, sum %.1f s; output tasks sum "
                            + "%.1f s; JVM heap peak (sampled) %.1f MiB%n", report.seconds(), maxRun / 1e3, sumRun / 1e3,
                    outRun / 1e3, heap.stop() / 1048576.0);
        } finally {
            spark.stop();
        }
        compare(dir);
    }

    /** The Spark output against the single machine's, element by element with the fp32 tolerance. */
    private static void compare(Path dir) throws IOException {
        Path single = dir.resolve("single-out.npy");
        if (!Files.exists(single)) {
            System.out.println("compare: no single-machine output to compare with");
            return;
        }
        float[] a = NpyArray.read(single).toFloats();
        float[] b = NpyArray.read(dir.resolve("spark-out.npy")).toFloats();
        float[] la = NpyArray.read(dir.resolve("single-lse.npy")).toFloats();
        float[] lb = NpyArray.read(dir.resolve("spark-lse.npy")).toFloats();
        double worst = 0;
        double maxAbs = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs(a[i] - b[i]);
            maxAbs = Math.max(maxAbs, d);
            worst = Math.max(worst, d / (2e-5 + 1e-4 * Math.abs(a[i])));
        }
        double worstLse = 0;
        for (int i = 0; i < la.length; i++) {
            worstLse = Math.max(worstLse, Math.abs(la[i] - lb[i]) / (1e-4 + 1e-6 * Math.abs(la[i])));
        }
        System.out.printf(Locale.ROOT, "compare: max |spark - single| %.3g; worst ratio to the fp32 tolerance: output "
                + "%.3f, LSE %.3f (%s)%n", maxAbs, worst, worstLse, worst <= 1 && worstLse <= 1 ? "within" : "OUTSIDE");
    }

    private static void predict(int n, int heads, int dim, String pattern, int[] shardCounts) {
        AttentionProblem p = AttentionProblem.builder().heads(heads).length(n).headDim(dim).build();
        BlockLayout layout = Starling.layout(p, Patterns.parse(pattern));
        long output = 4L * heads * n * dim;
        System.out.printf(Locale.ROOT, "predict: %s, %s; output %.1f MiB%n", p, pattern, output / 1048576.0);
        for (int s : shardCounts) {
            KeyShards shards = KeyShards.balanced(p, layout, s);
            SequencePlan plan = new SequencePlan(0, Sequence.of("p", "q", "k", "v", "o"), pattern, false, null, p, layout,
                    shards, 0, 1, 0);
            long maxShard = 0;
            long maxKeys = 0;
            for (int x = 0; x < s; x++) {
                maxShard = Math.max(maxShard, plan.shardPartialBytes[x]);
                maxKeys = Math.max(maxKeys, shards.keyCount(x));
            }
            System.out.printf(Locale.ROOT, "predict: %4d shards: shuffle %8.1f MiB (%.2f x output), largest shard's "
                            + "partials %.1f MiB, largest shard %d keys = K+V %.1f MiB%n", s,
                    plan.partialBytes() / 1048576.0, (double) plan.partialBytes() / output, maxShard / 1048576.0, maxKeys,
                    8.0 * maxKeys * heads * dim / 1048576.0);
        }
    }

    /** Samples the used heap every 5 ms; a lower bound of the true peak. */
    private static final class HeapSampler implements Runnable {
        private final Thread thread = new Thread(this, "heap-sampler");
        private volatile boolean running = true;
        private long peak;

        static HeapSampler start() {
            HeapSampler s = new HeapSampler();
            s.thread.setDaemon(true);
            s.thread.start();
            return s;
        }

        @Override
        public void run() {
            Runtime r = Runtime.getRuntime();
            while (running) {
                peak = Math.max(peak, r.totalMemory() - r.freeMemory());
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        long stop() throws InterruptedException {
            running = false;
            thread.join();
            return peak;
        }
    }
}
