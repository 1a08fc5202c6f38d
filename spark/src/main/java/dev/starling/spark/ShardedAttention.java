package dev.starling.spark;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.io.RealFile;
import dev.starling.api.io.TouchedFiles;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.SerializableConfiguration;
import org.apache.spark.util.TaskCompletionListener;
import scala.Tuple2;

/**
 * Exact block-sparse attention over sequences too long for one machine, as a Spark job
 * (DESIGN section 8): the keys of each sequence are cut into contiguous key-block shards
 * ({@link KeyShards}), one task per shard computes the partial {@code (O, LSE)} of every query
 * block that reads the shard — reading only that shard's keys and values, with whichever Starling
 * backend is selected on its executor — the partials are shuffled by (sequence, batch, head, query
 * block) and merged with {@link dev.starling.api.plan.OnlineSoftmax#merge}, and each sequence's
 * output is written as a {@code .npy} file, atomically.
 *
 * <pre>{@code
 * ShardedAttention job = ShardedAttention.builder()
 *         .pattern("bigbird(block=64, window=3, global=2, random=3)").shards(16).build();
 * JobReport report = job.run(spark, ShardedAttention.readManifest(spark, "hdfs:///attn/manifest.jsonl"));
 * }</pre>
 *
 * <p>Inputs are float32 C-order {@code .npy} files {@code q [B, Hq, Nq, D]}, {@code k [B, Hkv, Nk, D]},
 * {@code v [B, Hkv, Nk, Dv]} (as {@code starling run} reads them) on any Hadoop file system; the
 * output is {@code [B, Hq, Nq, Dv]} and the optional LSE {@code [B, Hq, Nq]}. Immutable; build one with
 * {@link #builder()}.
 */
public final class ShardedAttention {
    private final String pattern;
    private final int shards;
    private final boolean causal;
    private final Float scale;
    private final int queryBlocksPerChunk;
    private final long outputPartitionBytes;

    private ShardedAttention(Builder b) {
        this.pattern = Objects.requireNonNull(b.pattern, "pattern");
        Patterns.parse(pattern);
        if (b.shards < 1) {
            throw new IllegalArgumentException("shards must be >= 1, got " + b.shards);
        }
        if (b.queryBlocksPerChunk < 0) {
            throw new IllegalArgumentException("queryBlocksPerChunk must be >= 0 (0: the default),"
                    + " got " + b.queryBlocksPerChunk);
        }
        if (b.outputPartitionBytes < 1) {
            throw new IllegalArgumentException("outputPartitionBytes must be >= 1, got " + b.outputPartitionBytes);
        }
        this.shards = b.shards;
        this.causal = b.causal;
        this.scale = b.scale;
        this.queryBlocksPerChunk = b.queryBlocksPerChunk;
        this.outputPartitionBytes = b.outputPartitionBytes;
    }

    /** @return a builder with the defaults: 4 shards, not causal, scale {@code 1/sqrt(D)} */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Reads a manifest: a JSON Lines file (one JSON object per line) with one sequence per line:
     *
     * <pre>{@code
     * {"id": "chr1", "q": "hdfs:///attn/chr1/q.npy", "k": "hdfs:///attn/chr1/k.npy", "v": "hdfs:///attn/chr1/v.npy",
     *  "out": "hdfs:///attn/chr1/out.npy", "lse": "hdfs:///attn/chr1/lse.npy", "key_lengths": [1000000]}
     * }</pre>
     *
     * {@code id}, {@code q}, {@code k}, {@code v} and {@code out} (strings) are required; {@code lse}
     * (a string), {@code key_lengths} and {@code query_lengths} (arrays of integers, one entry per
     * batch entry) are optional. Any other field, a {@code null}, a field given twice or a value of
     * the wrong type is refused with its line and column.
     *
     * @param spark the session, whose Hadoop configuration resolves the path
     * @param path the manifest: one file on any Hadoop file system
     * @return the sequences, in file order
     * @throws IOException if the file is missing, a folder or unreadable
     * @throws IllegalArgumentException naming the line and column of what breaks the schema
     */
    public static List<Sequence> readManifest(SparkSession spark, String path) throws IOException {
        return Manifest.read(spark.sparkContext().hadoopConfiguration(), path);
    }

    /** One task of the shard stage: a key shard of a sequence. */
    private record ShardRef(int sequence, int shard) implements Serializable {
    }

    /**
     * Runs the job: checks every input and output, computes, writes every output, and returns what
     * happened. Nothing is written over an existing output unless every sequence succeeded up to
     * its final rename; a failed run leaves no partial output (its staging folders are removed).
     *
     * @param spark the session (any master: {@code local[N]}, standalone, YARN, Kubernetes)
     * @param sequences the sequences, with unique ids
     * @return the report
     * @throws IOException if an input cannot be read or an output cannot be written
     * @throws IllegalArgumentException on bad shapes, lengths or paths, before any task runs
     */
    public JobReport run(SparkSession spark, List<Sequence> sequences) throws IOException {
        long t0 = System.nanoTime();
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        Configuration conf = jsc.hadoopConfiguration();
        List<SequencePlan> plans = prepare(conf, sequences);
        List<Sequence> qualified = plans.stream().map(p -> p.sequence).toList();
        String runId = Long.toHexString(System.currentTimeMillis()) + "-" + Integer.toHexString(
                ThreadLocalRandom.current().nextInt(1 << 16));
        String group = "starling-" + runId;

        OutputPartitioner partitioner = new OutputPartitioner(plans);
        Broadcast<SerializableConfiguration> confBroadcast = SerializableConfiguration.broadcast(spark.sparkContext(), conf);
        CollectionAccumulator<ShardTaskStats> stats = spark.sparkContext().collectionAccumulator("starling shard tasks");
        List<ShardRef> tasks = new ArrayList<>();
        for (SequencePlan p : plans) {
            for (int s = 0; s < p.shardCount(); s++) {
                tasks.add(new ShardRef(p.index, s));
            }
        }
        TaskMetricsListener listener = new TaskMetricsListener(group);
        spark.sparkContext().addSparkListener(listener);
        jsc.setJobGroup(group, String.format(Locale.ROOT, "Starling key-sharded attention: %d sequence(s), %d shard "
                + "task(s), %d output partition(s)", plans.size(), tasks.size(), partitioner.numPartitions()), false);
        boolean ok = false;
        try {
            JavaPairRDD<RowBlockKey, float[]> partials = jsc.parallelize(tasks, tasks.size())
                    .mapPartitionsToPair(it -> shardPartials(it, plans, confBroadcast.value().value(), stats));
            JavaRDD<OutputParts.WrittenPart> written = partials.repartitionAndSortWithinPartitions(partitioner)
                    .mapPartitionsWithIndex((partition, it) -> List.of(OutputParts.write(partition, it, plans,
                            partitioner, runId, confBroadcast.value().value())).iterator(), false);
            List<OutputParts.WrittenPart> parts = written.collect();
            Map<Integer, List<OutputParts.WrittenPart>> bySequence = new HashMap<>();
            for (OutputParts.WrittenPart part : parts) {
                bySequence.computeIfAbsent(part.sequence(), s -> new ArrayList<>()).add(part);
            }
            // Every file is written in full beside its target before the first is renamed into place.
            List<List<OutputFiles.Staged>> staged = new ArrayList<>();
            for (SequencePlan p : plans) {
                staged.add(OutputFiles.stage(conf, p, bySequence.getOrDefault(p.index, List.of()), runId));
            }
            OutputFiles.commit(conf, plans, staged);
            ok = true;
        } finally {
            jsc.clearJobGroup();
            confBroadcast.destroy();
            OutputFiles.cleanUp(conf, qualified, runId);
            try {
                if (ok && !listener.awaitJobs(1, 30_000)) {
                    org.slf4j.LoggerFactory.getLogger(ShardedAttention.class).warn("Starling: Spark's task metrics did not all arrive within 30 s; the report lacks some");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                spark.sparkContext().removeSparkListener(listener);
            }
        }
        return report((System.nanoTime() - t0) / 1e9, plans, tasks, stats.value(), listener.tasks());
    }

    private static Iterator<Tuple2<RowBlockKey, float[]>> shardPartials(Iterator<ShardRef> refs, List<SequencePlan> plans,
            Configuration conf, CollectionAccumulator<ShardTaskStats> stats) throws IOException {
        ShardRef ref = refs.next();
        if (refs.hasNext()) {
            throw new IllegalStateException("a shard task got more than one shard");
        }
        ShardPartials partials = new ShardPartials(plans.get(ref.sequence()), ref.shard(), conf, stats::add);
        TaskContext context = TaskContext.get();
        if (context != null) {
            // Closes the query file also when the task fails before it has sent every partial.
            context.addTaskCompletionListener((TaskCompletionListener) c -> partials.close());
        }
        return partials;
    }

    /** Checks every sequence and decides shards and output partitions, before any task runs. */
    private List<SequencePlan> prepare(Configuration conf, List<Sequence> sequences) throws IOException {
        if (sequences.isEmpty()) {
            throw new IllegalArgumentException("no sequences to compute");
        }
        Set<String> ids = new HashSet<>();
        for (Sequence s : sequences) {
            if (!ids.add(s.id())) {
                throw new IllegalArgumentException("sequence id '" + s.id() + "' appears twice");
            }
        }
        // Every input first, then every output, so an output is checked against the inputs of all sequences.
        TouchedFiles local = new TouchedFiles("the job");
        List<String[]> inputs = new ArrayList<>();
        for (Sequence s : sequences) {
            String of = " of sequence '" + s.id() + "'";
            inputs.add(new String[] {qualify(conf, local, "q" + of, s.q(), false), qualify(conf, local, "k" + of, s.k(), false),
                qualify(conf, local, "v" + of, s.v(), false)});
        }
        List<Sequence> qualified = new ArrayList<>();
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            String of = " of sequence '" + s.id() + "'";
            String[] in = inputs.get(i);
            qualified.add(new Sequence(s.id(), in[0], in[1], in[2], qualify(conf, local, "out" + of, s.out(), true),
                    s.lse() == null ? null : qualify(conf, local, "lse" + of, s.lse(), true), s.keyLengths(),
                    s.queryLengths()));
        }
        OutputFiles.check(conf, qualified);
        PatternSpec spec = Patterns.parse(pattern);
        List<SequencePlan> plans = new ArrayList<>();
        int firstPartition = 0;
        for (int i = 0; i < qualified.size(); i++) {
            Sequence s = qualified.get(i);
            AttentionProblem problem = problem(conf, s);
            BlockLayout layout = Starling.layout(problem, spec);
            KeyShards keyShards = KeyShards.balanced(problem, layout, Math.min(shards, layout.keyBlocks()));
            long outputBytes = 4L * problem.batch() * problem.queryHeads() * problem.queryLength() * problem.valueDim();
            long rowBlocks = (long) problem.batch() * problem.queryHeads() * layout.queryBlocks();
            int parts = (int) Math.max(1, Math.min(Math.min(rowBlocks, 100_000),
                    (outputBytes + outputPartitionBytes - 1) / outputPartitionBytes));
            plans.add(new SequencePlan(i, s, pattern, causal, scale, problem, layout, keyShards, queryBlocksPerChunk,
                    parts, firstPartition));
            firstPartition += parts;
        }
        return List.copyOf(plans);
    }

    /**
     * The path made absolute with its file system's scheme; a local path is also resolved to the
     * real file it leads to and checked ({@link TouchedFiles}: inputs readable, outputs writable, no
     * output the same file as an input or another output, through links and {@code ..}).
     */
    private static String qualify(Configuration conf, TouchedFiles local, String role, String path, boolean output)
            throws IOException {
        Path p;
        try {
            p = new Path(path);
        } catch (IllegalArgumentException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new IllegalArgumentException(role + " '" + path + "' is not a path Hadoop can read ("
                    + cause.getMessage() + (path.contains(":") ? "; Hadoop paths cannot hold a ':' in a file name" : "") + ")");
        }
        Path q = p.getFileSystem(conf).makeQualified(p);
        if (!"file".equals(q.toUri().getScheme())) {
            return q.toString();
        }
        java.nio.file.Path given = java.nio.file.Paths.get(q.toUri());
        RealFile f = output ? local.output(role, given) : local.input(role, given);
        return new Path(f.real().toUri()).toString();
    }

    private AttentionProblem problem(Configuration conf, Sequence s) throws IOException {
        String id = s.id();
        int[] q = NpyTensorFile.readHeader(conf, s.q(), "q of sequence '" + id + "'").shape();
        int[] k = NpyTensorFile.readHeader(conf, s.k(), "k of sequence '" + id + "'").shape();
        int[] v = NpyTensorFile.readHeader(conf, s.v(), "v of sequence '" + id + "'").shape();
        String shapes = " (sequence '" + id + "': q " + Arrays.toString(q) + ", k " + Arrays.toString(k) + ", v "
                + Arrays.toString(v) + ", all [B, H, N, D])";
        if (k[0] != q[0] || v[0] != q[0]) {
            throw new IllegalArgumentException("q, k and v must have the same batch" + shapes);
        }
        if (k[3] != q[3]) {
            throw new IllegalArgumentException("k must have q's head dim " + q[3] + shapes);
        }
        if (v[1] != k[1] || v[2] != k[2]) {
            throw new IllegalArgumentException("v must have k's heads and length" + shapes);
        }
        AttentionProblem.Builder b = AttentionProblem.builder().batch(q[0]).heads(q[1]).kvHeads(k[1]).queryLength(q[2])
                .keyLength(k[2]).headDim(q[3]).valueDim(v[3]).causal(causal).keyLengths(s.keyLengths())
                .queryLengths(s.queryLengths());
        if (scale != null) {
            b.scale(scale);
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("sequence '" + id + "': " + e.getMessage(), e);
        }
    }

    private static JobReport report(double seconds, List<SequencePlan> plans, List<ShardRef> tasks,
                                    List<ShardTaskStats> stats, List<TaskMetricsListener.TaskRecord> records) {
        Map<Long, ShardTaskStats> byShard = new HashMap<>();
        for (ShardTaskStats s : stats) {
            byShard.put((long) s.sequence() << 32 | s.shard(), s);
        }
        Map<Integer, TaskMetricsListener.TaskRecord> mapTasks = new HashMap<>();
        List<TaskMetricsListener.TaskRecord> outputTasks = new ArrayList<>();
        for (TaskMetricsListener.TaskRecord r : records) {
            if (r.type().equals("ShuffleMapTask")) {
                mapTasks.put(r.index(), r);
            } else {
                outputTasks.add(r);
            }
        }
        List<JobReport.ShardTask> shardTasks = new ArrayList<>();
        for (int i = 0; i < tasks.size(); i++) {
            ShardRef ref = tasks.get(i);
            SequencePlan p = plans.get(ref.sequence());
            ShardTaskStats st = byShard.get((long) ref.sequence() << 32 | ref.shard());
            shardTasks.add(new JobReport.ShardTask(p.sequence.id(), st, p.shardPartialBytes[ref.shard()], mapTasks.get(i)));
        }
        List<JobReport.SequenceReport> sequences = new ArrayList<>();
        for (SequencePlan p : plans) {
            sequences.add(new JobReport.SequenceReport(p.sequence.id(), p.problem().toString(), p.shardCount(),
                    Arrays.stream(p.boundaries).boxed().toList(), p.outputBytes(), p.partialBytes()));
        }
        outputTasks.sort((a, b) -> Integer.compare(a.index(), b.index()));
        return new JobReport(seconds, sequences, shardTasks, outputTasks);
    }

    /** Options of a {@link ShardedAttention} job. */
    public static final class Builder {
        private String pattern;
        private int shards = 4;
        private boolean causal;
        private Float scale;
        private int queryBlocksPerChunk;
        private long outputPartitionBytes = 16L << 20;

        private Builder() {
        }

        /** @param text the pattern, e.g. {@code bigbird(block=64, window=3, global=2, random=3)} @return this */
        public Builder pattern(String text) {
            this.pattern = text;
            return this;
        }

        /**
         * @param count key shards per sequence (default 4): one task each. A sequence with fewer key
         *              blocks gets one shard per key block.
         * @return this
         */
        public Builder shards(int count) {
            this.shards = count;
            return this;
        }

        /** @param causal whether the causal mask applies ({@code j <= i + Nk − Nq}) @return this */
        public Builder causal(boolean causal) {
            this.causal = causal;
            return this;
        }

        /** @param scale the score scale (default {@code 1/sqrt(D)}) @return this */
        public Builder scale(float scale) {
            this.scale = scale;
            return this;
        }

        /**
         * @param blocks query blocks a shard task computes at once (default 0: as many as make its
         *               queries, outputs and LSE about as large as the shard's keys and values, and at
         *               least 16 MiB)
         * @return this
         */
        public Builder queryBlocksPerChunk(int blocks) {
            this.queryBlocksPerChunk = blocks;
            return this;
        }

        /**
         * @param bytes output bytes per merge-and-write task (default 16 MiB); a sequence's output is
         *              written by {@code ceil(output bytes / this)} tasks, then concatenated. Each sorts
         *              the partials of its rows: about this many bytes times the shards a row reads
         *              (Spark's sorter spills to disk when memory is short)
         * @return this
         */
        public Builder outputPartitionBytes(long bytes) {
            this.outputPartitionBytes = bytes;
            return this;
        }

        /**
         * @return the job
         * @throws IllegalArgumentException on a bad pattern or option
         */
        public ShardedAttention build() {
            return new ShardedAttention(this);
        }
    }
}
