package dev.starling.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.Patterns;
import dev.starling.backend.reference.ReferenceBackend;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Spark job in {@code local[2]} against one machine: the merged output equals the whole. */
class ShardedAttentionTest {
    private static final String BIGBIRD = "bigbird(block=64, window=3, global=2, random=3)";
    private static SparkSession spark;

    @TempDir
    Path dir;

    @BeforeAll
    static void startSpark() {
        spark = LocalSpark.start();
    }

    @AfterAll
    static void stopSpark() {
        spark.stop();
    }

    /** Writes a case's inputs as {@code .npy} files and returns the sequence that reads them. */
    static Sequence write(Path dir, String id, AttentionCase c) throws IOException {
        Path q = dir.resolve(id + "-q.npy");
        Path k = dir.resolve(id + "-k.npy");
        Path v = dir.resolve(id + "-v.npy");
        for (Object[] f : new Object[][] {{q, c.q()}, {k, c.k()}, {v, c.v()}}) {
            Tensor t = ((Tensor) f[1]).toLayout(TensorLayout.BHSD);
            NpyArray.ofFloats(t.data(), t.batch(), t.heads(), t.length(), t.dim()).write((Path) f[0]);
        }
        AttentionProblem p = c.problem();
        Sequence s = Sequence.of(id, q.toString(), k.toString(), v.toString(), dir.resolve(id + "-out.npy").toString())
                .withLse(dir.resolve(id + "-lse.npy").toString());
        return s.withKeyLengths(p.keyLengths()).withQueryLengths(p.queryLengths());
    }

    /** Reads a sequence's output and LSE back. */
    static Tensor output(Sequence s, AttentionProblem p) throws IOException {
        NpyArray a = NpyArray.read(Path.of(s.out()));
        assertEquals(List.of(p.batch(), p.queryHeads(), p.queryLength(), p.valueDim()),
                java.util.Arrays.stream(a.shape()).boxed().toList());
        return Tensor.bhsd(a.toFloats(), p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
    }

    static float[] lse(Sequence s) throws IOException {
        return NpyArray.read(Path.of(s.lse())).toFloats();
    }

    private static DenseOracle.Result asResult(Tensor out, float[] lse) {
        double[] o = new double[out.data().length];
        for (int i = 0; i < o.length; i++) {
            o[i] = out.data()[i];
        }
        double[] l = new double[lse.length];
        for (int i = 0; i < l.length; i++) {
            l[i] = lse[i];
        }
        return new DenseOracle.Result(o, l);
    }

    @Test
    void bigBirdOver65536TokensInFourShardsEqualsOneMachine() throws IOException {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(65_536).headDim(16).build();
        AttentionCase c = AttentionCase.random("bigbird 65536", 19, p, Patterns.parse(BIGBIRD), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        Sequence s = write(dir, "long", c);
        JobReport report = ShardedAttention.builder().pattern(BIGBIRD).shards(4).build().run(spark, List.of(s));

        Tensor whole = c.newOutput();
        float[] wholeLse = c.newLse();
        try (AttentionPlan plan = new ReferenceBackend().plan(p, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), whole, wholeLse);
        }
        Comparison.Outcome o = Comparison.compare(p, asResult(whole, wholeLse), output(s, p), lse(s), Tolerance.FP32);
        assertTrue(o.ok(), o.message());

        assertEquals(4, report.shardTasks().size());
        assertEquals(List.of("reference"), report.backends());
        for (JobReport.ShardTask t : report.shardTasks()) {
            assertTrue(t.spark() != null, "Spark's metrics of shard " + t.stats().shard());
            assertEquals(t.predictedShuffleBytes(), t.stats().partialBytes(), "what the task sent is what the layout says");
            double ratio = (double) t.spark().shuffleBytesWritten() / t.predictedShuffleBytes();
            assertTrue(ratio > 0.9 && ratio < 1.1, "shard " + t.stats().shard() + ": Spark wrote "
                    + t.spark().shuffleBytesWritten() + " shuffle bytes, the layout predicts " + t.predictedShuffleBytes());
            // A shard task holds its part of K and V and one chunk of queries and outputs, not the sequence.
            long keyValues = 4L * t.stats().keyCount() * p.kvHeads() * (p.headDim() + p.valueDim());
            long bound = keyValues + Math.max(keyValues, ShardPartials.MIN_CHUNK_BYTES) + (1 << 20);
            assertTrue(t.stats().workingSetBytes() <= bound, t.stats() + " holds more than " + bound);
            assertTrue(t.stats().workingSetBytes() >= keyValues, t.stats().toString());
        }
        System.out.println(report.format());
        assertNoLeftovers();
    }

    @Test
    void causalGqaAndLengthsInSeveralSequencesEqualTheOracle() throws IOException {
        String pattern = "bigbird(block=16, window=3, global=2, random=2, seed=7)";
        AttentionProblem[] problems = {
            // causal, Nq != Nk (bottom-right alignment), partial last blocks
            AttentionProblem.builder().heads(2).queryLength(300).keyLength(470).headDim(8).causal(true).build(),
            // GQA with a different value dim
            AttentionProblem.builder().heads(4).kvHeads(2).length(400).headDim(8).valueDim(12).causal(true).build(),
            // key and query lengths over a batch of two, GQA with one kv head
            AttentionProblem.builder().batch(2).heads(2).kvHeads(1).queryLength(250).keyLength(333).headDim(16)
                    .keyLengths(333, 190).queryLengths(250, 171).causal(true).build(),
        };
        List<Sequence> sequences = new ArrayList<>();
        List<AttentionCase> cases = new ArrayList<>();
        for (int i = 0; i < problems.length; i++) {
            AttentionCase c = AttentionCase.random("case " + i, 100 + i, problems[i], Patterns.parse(pattern),
                    TensorLayout.BHSD, AttentionCase.Values.NORMAL);
            cases.add(c);
            sequences.add(write(dir, "s" + i, c));
        }
        // Small chunks and small output partitions, so every path of the job runs several times.
        JobReport report = ShardedAttention.builder().pattern(pattern).shards(5).causal(true).queryBlocksPerChunk(3)
                .outputPartitionBytes(4096).build().run(spark, sequences);
        for (int i = 0; i < problems.length; i++) {
            AttentionCase c = cases.get(i);
            Comparison.Outcome o = Comparison.compare(c.problem(), c.expected(), output(sequences.get(i), c.problem()),
                    lse(sequences.get(i)), Tolerance.FP32);
            assertTrue(o.ok(), "sequence " + i + " (" + c.problem() + "): " + o.message());
        }
        assertEquals(15, report.shardTasks().size());
        assertTrue(report.outputTasks().size() > 3, "several output partitions: " + report.outputTasks().size());
        assertNoLeftovers();
    }

    @Test
    void oneShardAndOneShardPerKeyBlockAgree() throws IOException {
        String pattern = "union(window(block=32, blocks=3), random(block=32, blocks=2, seed=3))";
        AttentionProblem p = AttentionProblem.builder().heads(3).length(200).headDim(8).build();
        AttentionCase c = AttentionCase.random("extremes", 5, p, Patterns.parse(pattern), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        for (int shards : new int[] {1, 7, 100}) {
            Path sub = Files.createDirectory(dir.resolve("shards" + shards));
            Sequence s = write(sub, "x", c);
            JobReport report = ShardedAttention.builder().pattern(pattern).shards(shards).build().run(spark, List.of(s));
            assertEquals(Math.min(shards, 7), report.shardTasks().size(), "a shard per key block at most");
            Comparison.Outcome o = Comparison.compare(p, c.expected(), output(s, p), lse(s), Tolerance.FP32);
            assertTrue(o.ok(), shards + " shards: " + o.message());
        }
    }

    @Test
    void aShardNoRowReadsSendsNothing() throws IOException {
        // A window over 4 query blocks never reaches the keys past block 4: those shards send no partial.
        String pattern = "window(block=16, blocks=3)";
        AttentionProblem p = AttentionProblem.builder().heads(2).queryLength(64).keyLength(320).headDim(8).build();
        AttentionCase c = AttentionCase.random("unread keys", 8, p, Patterns.parse(pattern), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        Sequence s = write(dir, "unread", c);
        JobReport report = ShardedAttention.builder().pattern(pattern).shards(6).build().run(spark, List.of(s));
        Comparison.Outcome o = Comparison.compare(p, c.expected(), output(s, p), lse(s), Tolerance.FP32);
        assertTrue(o.ok(), o.message());
        assertTrue(report.shardTasks().stream().anyMatch(t -> t.stats().rowBlocks() == 0), report.format());
        assertTrue(report.format().contains(" - "), report.format());
    }

    @Test
    void refusesBadOutputsAndShapesBeforeRunning() throws IOException {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(100).headDim(8).build();
        AttentionCase c = AttentionCase.random("bad", 1, p, Patterns.parse("window(block=16, blocks=3)"),
                TensorLayout.BHSD, AttentionCase.Values.NORMAL);
        Sequence s = write(dir, "bad", c);
        ShardedAttention job = ShardedAttention.builder().pattern("window(block=16, blocks=3)").build();

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> job.run(spark,
                List.of(new Sequence("bad", s.q(), s.k(), s.v(), s.k(), null, null, null))));
        assertTrue(e.getMessage().contains("never writes over an input"), e.getMessage());

        IOException missing = assertThrows(IOException.class, () -> job.run(spark,
                List.of(new Sequence("bad", s.q(), s.k(), s.v(), dir.resolve("no/such/dir/out.npy").toString(), null,
                        null, null))));
        assertTrue(missing.getMessage().contains("out of sequence 'bad'") && missing.getMessage().contains("no such directory"),
                missing.getMessage());

        Path shortV = dir.resolve("short-v.npy");
        NpyArray.ofFloats(new float[2 * 50 * 8], 1, 2, 50, 8).write(shortV);
        e = assertThrows(IllegalArgumentException.class, () -> job.run(spark,
                List.of(new Sequence("bad", s.q(), s.k(), shortV.toString(), dir.resolve("o.npy").toString(), null, null,
                        null))));
        assertTrue(e.getMessage().contains("v must have k's heads and length") && e.getMessage().contains("[1, 2, 50, 8]"),
                e.getMessage());

        e = assertThrows(IllegalArgumentException.class, () -> job.run(spark,
                List.of(s.withKeyLengths(101))));
        assertTrue(e.getMessage().contains("keyLengths[0] = 101"), e.getMessage());

        IOException io = assertThrows(IOException.class, () -> job.run(spark,
                List.of(new Sequence("gone", dir.resolve("none.npy").toString(), s.k(), s.v(),
                        dir.resolve("o.npy").toString(), null, null, null))));
        assertTrue(io.getMessage().contains("q of sequence 'gone'"), io.getMessage());
        assertFalse(Files.exists(dir.resolve("o.npy")));
    }

    @Test
    void theBackendIsSelectedOnTheExecutorAndAFailedRunLeavesNothing() throws IOException {
        String pattern = "window(block=16, blocks=3)";
        AttentionProblem p = AttentionProblem.builder().heads(2).length(100).headDim(8).build();
        AttentionCase c = AttentionCase.random("selection", 3, p, Patterns.parse(pattern), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        Sequence s = write(dir, "sel", c);
        ShardedAttention job = ShardedAttention.builder().pattern(pattern).shards(2).build();
        // local[N] runs its executor threads in this JVM, so the property reaches them as
        // spark.executor.extraJavaOptions=-Dstarling.backend=... would on a cluster.
        System.setProperty("starling.backend", "no-such-backend");
        try {
            Exception e = assertThrows(Exception.class, () -> job.run(spark, List.of(s)));
            assertTrue(String.valueOf(e.getMessage()).contains("backend 'no-such-backend' is not on the class path"),
                    e.getMessage());
            System.setProperty("starling.backend", "reference");
            assertEquals(List.of("reference"), job.run(spark, List.of(s)).backends());
        } finally {
            System.clearProperty("starling.backend");
        }
        assertNoLeftovers();
    }

    @Test
    void readsAManifest() throws IOException {
        String pattern = "bigbird(block=16, window=3, global=1, random=1)";
        List<String> lines = new ArrayList<>();
        List<AttentionCase> cases = new ArrayList<>();
        List<Sequence> expected = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            AttentionProblem p = AttentionProblem.builder().batch(2).heads(2).length(120 + 40 * i).headDim(8)
                    .keyLengths(120 + 40 * i, 77).build();
            AttentionCase c = AttentionCase.random("m" + i, 9 + i, p, Patterns.parse(pattern), TensorLayout.BHSD,
                    AttentionCase.Values.NORMAL);
            Sequence s = write(dir, "m" + i, c);
            cases.add(c);
            expected.add(s);
            lines.add("{\"id\": \"m" + i + "\", \"q\": \"" + s.q() + "\", \"k\": \"" + s.k() + "\", \"v\": \"" + s.v()
                    + "\", \"out\": \"" + s.out() + "\"" + (i == 0 ? ", \"lse\": \"" + s.lse() + "\"" : "")
                    + ", \"key_lengths\": [" + (120 + 40 * i) + ", 77]}");
        }
        Path manifest = Files.write(dir.resolve("manifest.jsonl"), lines);
        List<Sequence> read = ShardedAttention.readManifest(spark, manifest.toString());
        assertEquals(expected.get(0), read.get(0));
        assertEquals(expected.get(1).withLse(null), read.get(1));

        java.io.ByteArrayOutputStream text = new java.io.ByteArrayOutputStream();
        java.io.PrintStream print = new java.io.PrintStream(text, true, java.nio.charset.StandardCharsets.UTF_8);
        int status = ShardedAttentionJob.run(spark, new String[] {"--manifest", manifest.toString(), "--pattern", pattern,
            "--shards", "3"}, print, print);
        assertEquals(0, status, text.toString());
        for (int i = 0; i < 2; i++) {
            AttentionCase c = cases.get(i);
            Comparison.Outcome o = Comparison.compare(c.problem(), c.expected(), output(expected.get(i), c.problem()),
                    i == 0 ? lse(expected.get(i)) : null, Tolerance.FP32);
            assertTrue(o.ok(), o.message());
        }
        assertTrue(text.toString().contains("shuffle predicted"), text.toString());
    }

    private void assertNoLeftovers() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            List<String> hidden = files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(".")).toList();
            assertTrue(hidden.isEmpty(), "staging folders and temporary files are removed: " + hidden);
        }
    }
}
