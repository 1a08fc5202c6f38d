package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.npy.NpyArray;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 27, items 10 and 11: one clear line for each refusal of {@code run}, before anything is computed. */
class RunMessagesTest {

    private static Path floats(Path dir, String name, int... shape) throws Exception {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.sin(i);
        }
        Path f = dir.resolve(name);
        NpyArray.ofFloats(x, shape).write(f);
        return f;
    }

    private static StarlingCliTest.Result run(Path q, Path k, Path v, String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("run", "--q", q.toString(), "--k", k.toString(),
                "--v", v.toString(), "--pattern", "dense(block=4)"));
        args.addAll(List.of(more));
        return StarlingCliTest.run(args.toArray(String[]::new));
    }

    private static List<String> files(Path dir) throws Exception {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void anOutputEndingInASlashIsRefusedAsAFolder(@TempDir Path dir) throws Exception {
        Path q = floats(dir, "q.npy", 1, 1, 8, 4);
        List<String> before = files(dir);
        StarlingCliTest.Result r = run(q, q, q, "--out", dir.resolve("o.npy") + "/");
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("--out") && r.err().contains("ends with '/', so it names a folder"), r.err());
        assertEquals(before, files(dir), "nothing written");
    }

    @Test
    void anEmptyFileOptionSaysItNeedsAFile(@TempDir Path dir) throws Exception {
        Path q = floats(dir, "q.npy", 1, 1, 8, 4);
        StarlingCliTest.Result r = StarlingCliTest.run("run", "--q=", "--k", q.toString(), "--v", q.toString(),
                "--pattern", "dense(block=4)", "--out", dir.resolve("o.npy").toString());
        assertEquals(StarlingCli.BAD_INPUT, r.code());
        assertTrue(r.err().contains("--q") && r.err().contains("empty value: the option needs a file name"), r.err());
        assertFalse(r.err().contains("is a directory"), r.err());
    }

    @Test
    void float64BeyondFloat32IsRefusedWithTheElement(@TempDir Path dir) throws Exception {
        Path q = floats(dir, "q.npy", 1, 1, 8, 4);
        ByteBuffer b = ByteBuffer.allocate(8 * 32).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 32; i++) {
            b.putDouble(i == 13 ? 1e39 : 0.5);
        }
        Path v = dir.resolve("v64.npy");
        new NpyArray("<f8", new int[] {1, 1, 8, 4}, b.array()).write(v);
        StarlingCliTest.Result r = run(q, q, v, "--out", dir.resolve("o.npy").toString());
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("v (" + v + "): float64 element 13 [0, 0, 3, 1] is 1.0E39, beyond the float32 range"),
                r.err());
        assertFalse(Files.exists(dir.resolve("o.npy")));
    }

    @Test
    void nonAsciiDigitsInPatternTextAreRefused(@TempDir Path dir) throws Exception {
        Path q = floats(dir, "q.npy", 1, 1, 8, 4);
        StarlingCliTest.Result r = StarlingCliTest.run("run", "--q", q.toString(), "--k", q.toString(), "--v", q.toString(),
                "--pattern", "dense(block=\u0664)", "--out", dir.resolve("o.npy").toString());
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertFalse(Files.exists(dir.resolve("o.npy")));
    }

    @Test
    void compareRefusesALayoutFileThatFitsOnlyTheFirstLengthBeforeTimingAnything(@TempDir Path dir) throws Exception {
        byte[] ones = new byte[4 * 4];
        java.util.Arrays.fill(ones, (byte) 1);
        Path mask = dir.resolve("m.npy");
        new NpyArray("|u1", new int[] {4, 4}, ones).write(mask);
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--pattern", "layout(file=" + mask + ", block=16)",
                "--lengths", "64,128", "--backends", "reference", "--no-machine-rate", "--no-peers");
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertTrue(r.err().startsWith("starling: --lengths 128: explicit layout"), r.err());
        assertFalse(r.out().contains("reference"), "nothing was timed: " + r.out());
    }

    /** The decision of issue 27, item 11: a dangling output link is followed; its target is created, the link stays. */
    @Test
    void aDanglingOutputLinkIsFollowedToItsTarget(@TempDir Path dir) throws Exception {
        Path q = floats(dir, "q.npy", 1, 1, 8, 4);
        Path target = dir.resolve("real-out.npy");
        Path link = Files.createSymbolicLink(dir.resolve("o.npy"), target);
        StarlingCliTest.Result r = run(q, q, q, "--out", link.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        assertEquals(target, Files.readSymbolicLink(link));
        assertArrayEquals(new int[] {1, 1, 8, 4}, NpyArray.read(target).shape());
    }

    @Test
    void outOfHeapInRunGivesTheProblemsEstimate(@TempDir Path dir) throws Exception {
        Path q = floats(dir, "q.npy", 1, 4, 256, 32);
        long needed = RunCommand.heapNeeded(q, q, q, true);
        // 3 inputs of 32,768 floats: raw and float32 (3 · 3 · 32,768), out and LSE with copies, dOut, gradients.
        assertTrue(needed > 4L * (9 * 32_768) && needed < 512L << 20, "estimate " + needed);
        String line = RunCommand.heapAdvice(new OutOfMemoryError("Java heap space"), 20L << 30, 4L << 30);
        assertEquals("out of memory (Java heap space): this problem needs about 20.0 GiB of Java heap (its tensors, their "
                + "staged copies and the backend's scratch), this JVM has 4.0 GiB: run with STARLING_JAVA_OPTS=-Xmx21g "
                + "./starling run ...", line);
        assertTrue(RunCommand.isThreadLimit(new OutOfMemoryError("unable to create native thread: possibly out of memory")));
        assertFalse(RunCommand.isThreadLimit(new OutOfMemoryError("Java heap space")));
    }
}
