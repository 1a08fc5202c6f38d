package dev.starling.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 27: paths are the files they lead to, a failed run writes nothing, the manifest has a schema, errors are one line. */
class ShardedAttentionHardeningTest {
    private static final String PATTERN = "window(block=16, blocks=3)";
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

    private Sequence sequence(Path folder, String id, int seed) throws IOException {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(64).headDim(8).build();
        AttentionCase c = AttentionCase.random(id, seed, p, Patterns.parse(PATTERN), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        return ShardedAttentionTest.write(folder, id, c);
    }

    private static ShardedAttention job() {
        return ShardedAttention.builder().pattern(PATTERN).shards(2).build();
    }

    /** Every file under a folder with its bytes. */
    private static Map<String, String> snapshot(Path folder) throws IOException {
        Map<String, String> files = new TreeMap<>();
        try (Stream<Path> s = Files.walk(folder)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                files.put(folder.relativize(p).toString(), Arrays.toString(Files.readAllBytes(p)));
            }
        }
        return files;
    }

    @Test
    void anOutputThroughASymlinkedFolderOntoAnInputIsRefused() throws IOException {
        Path tmp = dir.toRealPath();
        Path in = Files.createDirectory(tmp.resolve("in"));
        Sequence s = sequence(in, "a", 1);
        Files.createSymbolicLink(tmp.resolve("ln"), Path.of("in"));
        Map<String, String> before = snapshot(in);
        Sequence bad = new Sequence("a", s.q(), s.k(), s.v(), tmp.resolve("ln/a-q.npy").toString(), null, null, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> job().run(spark, List.of(bad)));
        assertTrue(e.getMessage().contains("out of sequence 'a' " + tmp.resolve("ln/a-q.npy") + " (the file " + s.q()
                + ") is the same file as q of sequence 'a'"), e.getMessage());
        assertEquals(before, snapshot(in));
    }

    @Test
    void outAndLseNamingOneFileThroughALinkAreRefused() throws IOException {
        Path tmp = dir.toRealPath();
        Sequence s = sequence(tmp, "a", 2);
        Files.createSymbolicLink(tmp.resolve("ln"), tmp);
        Sequence bad = new Sequence("a", s.q(), s.k(), s.v(), tmp.resolve("o.npy").toString(),
                tmp.resolve("ln/o.npy").toString(), null, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> job().run(spark, List.of(bad)));
        assertTrue(e.getMessage().contains("are the same file " + tmp.resolve("o.npy")), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("o.npy")));
    }

    @Test
    void aDiskFullWhileWritingTheSecondSequenceLeavesTheFirstOutputAsItWas() throws IOException {
        Path tmp = dir.toRealPath();
        Sequence a = sequence(tmp, "a", 3);
        Sequence b = sequence(tmp, "b", 4);
        Configuration conf = spark.sparkContext().hadoopConfiguration();
        conf.set("fs.faulty.impl", FaultyFileSystem.class.getName());
        conf.set("fs.faulty.impl.disable.cache", "true");
        conf.set("fs.AbstractFileSystem.faulty.impl", FaultyFileSystem.Context.class.getName());
        List<Sequence> both = List.of(a.withLse(null), b.withLse(null)).stream()
                .map(s -> new Sequence(s.id(), s.q(), s.k(), s.v(), "faulty:" + s.out(), null, null, null)).toList();
        try {
            // First, nothing fails: the scheme writes every output.
            job().run(spark, both);
            assertTrue(Files.size(Path.of(a.out())) > 128 && Files.size(Path.of(b.out())) > 128);
            Files.writeString(Path.of(a.out()), "old a");
            Files.writeString(Path.of(b.out()), "old b");
            conf.set(FaultyFileSystem.FAIL_ON, "b-out.npy.tmp-");
            IOException e = assertThrows(IOException.class, () -> job().run(spark, both));
            assertTrue(e.getMessage().contains("no space left on device") && e.getMessage().contains("b-out.npy"),
                    e.getMessage());
            assertEquals("old a", Files.readString(Path.of(a.out())), "the first sequence's output is not replaced");
            assertEquals("old b", Files.readString(Path.of(b.out())));
            try (Stream<Path> files = Files.list(tmp)) {
                List<String> hidden = files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(".")).toList();
                assertTrue(hidden.isEmpty(), "staging folders and temporaries are removed: " + hidden);
            }
        } finally {
            conf.unset(FaultyFileSystem.FAIL_ON);
        }
    }

    @Test
    void theManifestRefusesUnknownNullAndMistypedFieldsWithTheLine() throws IOException {
        Sequence s = sequence(dir, "a", 5);
        String good = "{\"id\": \"a\", \"q\": \"" + s.q() + "\", \"k\": \"" + s.k() + "\", \"v\": \"" + s.v()
                + "\", \"out\": \"" + s.out() + "\"";
        String[][] cases = {
            {good + ", \"key_length\": [64]}", "line 2, column ", "unknown field \"key_length\""},
            {good + ", \"lse_path\": \"x.npy\"}", "line 2, column ", "unknown field \"lse_path\""},
            {good + ", \"key_lengths\": [null]}", "line 2, column ", "\"key_lengths\"[0] must be an integer, not null"},
            {good + ", \"lse\": null}", "line 2, column ", "\"lse\" must be a string, not null"},
            {good + ", \"key_lengths\": [1.5]}", "line 2", "must be an integer"},
            {good + ", \"key_lengths\": [99999999999]}", "line 2", "outside the int range"},
            {good + ", \"id\": \"b\"}", "line 2", "\"id\" is given twice"},
            {good + "", "line 2", "expected ',' or '}'"},
            {"{\"id\": \"a\"}", "line 2", "no \"q\""},
        };
        for (String[] c : cases) {
            Path manifest = Files.write(dir.resolve("m.jsonl"), List.of(good + "}", c[0]));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ShardedAttention.readManifest(spark, manifest.toString()), c[0]);
            assertTrue(e.getMessage().startsWith("manifest " + manifest + " " + c[1]) && e.getMessage().contains(c[2]),
                    e.getMessage());
        }
        IOException e = assertThrows(IOException.class, () -> ShardedAttention.readManifest(spark, dir.toString()));
        assertEquals("manifest " + dir + ": is a folder; give one JSON Lines file", e.getMessage());
        e = assertThrows(IOException.class, () -> ShardedAttention.readManifest(spark, dir.resolve("*.jsonl").toString()));
        assertEquals("manifest " + dir.resolve("*.jsonl") + ": no such file", e.getMessage());
    }

    private record Run(int status, String out, String err) {
    }

    private static Run main(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = ShardedAttentionJob.run(spark, args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void everyRefusalIsOneLineOnStandardErrorWithExitTwo() throws IOException {
        Sequence s = sequence(dir, "a", 6);
        Path manifest = Files.writeString(dir.resolve("m.jsonl"), "{\"id\": \"a\", \"q\": \"" + s.q() + "\", \"k\": \""
                + s.k() + "\", \"v\": \"" + s.v() + "\", \"out\": \"" + s.out() + "\"}\n");
        Run r = main("--manifest", manifest.toString(), "--pattern", PATTERN, "--shards", "abc");
        assertEquals(2, r.status());
        assertEquals("", r.out());
        assertTrue(r.err().startsWith("error: --shards must be an integer from 1 to 2147483647, got 'abc'\nusage:"), r.err());
        r = main("--manifest", manifest.toString(), "--pattern", PATTERN, "--output-partition-mb", "99999999999999");
        assertTrue(r.err().startsWith("error: --output-partition-mb must be an integer from 1 to"), r.err());
        r = main("--manifest", dir.resolve("none.jsonl").toString(), "--pattern", PATTERN);
        assertEquals(2, r.status());
        assertEquals("error: manifest " + dir.resolve("none.jsonl") + ": no such file\n", r.err());

        // A truncated input is found on the driver, before any task: one line, no stack trace.
        byte[] k = Files.readAllBytes(Path.of(s.k()));
        Files.write(Path.of(s.k()), Arrays.copyOf(k, k.length - 4));
        r = main("--manifest", manifest.toString(), "--pattern", PATTERN);
        assertEquals(2, r.status(), r.err());
        assertEquals("", r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("k of sequence 'a' (file:" + s.k()) && r.err().contains("truncated data"), r.err());
    }

    @Test
    void aTaskFailureIsReducedToItsCause() {
        Throwable cause = new IOException("k.npy: truncated data");
        Throwable spark = new org.apache.spark.SparkException("Job aborted due to stage failure: Task 0 in stage 1.0 "
                + "failed 1 times, most recent failure: java.io.IOException: k.npy: truncated data\n\tat a.b(C.java:1)",
                cause);
        assertTrue(ShardedAttentionJob.cause(spark) == cause);
        assertTrue(ShardedAttentionJob.isBadInput(ShardedAttentionJob.cause(spark)));
        assertEquals("k.npy: truncated data", ShardedAttentionJob.message(ShardedAttentionJob.cause(spark)));
        assertEquals("Job aborted due to stage failure: Task 0 in stage 1.0 failed 1 times, most recent failure: "
                + "java.io.IOException: k.npy: truncated data", ShardedAttentionJob.message(
                        new org.apache.spark.SparkException(spark.getMessage())));
    }
}
