package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.ExplicitPattern;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class StarlingCliTest {

    record Result(int code, String out, String err) {
    }

    static Result run(String... args) {
        CommandLine cl = StarlingCli.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    private static Path save(Path dir, String name, float[] data, int... shape) throws Exception {
        Path f = dir.resolve(name);
        NpyArray.ofFloats(data, shape).write(f);
        return f;
    }

    private static float[] randn(Random r, int n) {
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            d[i] = (float) r.nextGaussian();
        }
        return d;
    }

    @Test
    void backendsListsTheReferenceBackend() {
        Result r = run("backends");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("reference") && r.out().contains("available"), r.out());
    }

    @Test
    void patternPrintsStatisticsDrawsAndExports(@TempDir Path dir) throws Exception {
        Path npy = dir.resolve("layout.npy");
        Result r = run("pattern", "bigbird(block=16, random=1)", "--seq", "100", "--kv-seq", "120", "--heads", "3",
                "--show", "--npy", npy.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("blocks         7 x 8 of 16 tokens"), r.out());
        assertTrue(r.out().contains("head 2:"), r.out());
        NpyArray a = NpyArray.read(npy);
        assertArrayEquals(new int[] {3, 7, 8}, a.shape());
        assertEquals("|u1", a.dtype());
    }

    /** run on .npy files agrees with the dense oracle over the layout that pattern --npy writes. */
    @Test
    void runAgreesWithDenseAttentionOverTheExportedLayout(@TempDir Path dir) throws Exception {
        Random rnd = new Random(5);
        int b = 2, hq = 4, hkv = 2, nq = 90, nk = 110, d = 16, dv = 8;
        float[] q = randn(rnd, b * hq * nq * d);
        float[] k = randn(rnd, b * hkv * nk * d);
        float[] v = randn(rnd, b * hkv * nk * dv);
        String spec = "bigbird(block=16, window=3, global=2, random=2, seed=3)";
        Path layoutFile = dir.resolve("layout.npy");
        assertEquals(0, run("pattern", spec, "--seq", "" + nq, "--kv-seq", "" + nk, "--heads", "" + hq, "--causal",
                "--npy", layoutFile.toString()).code());
        Result r = run("run", "--q", save(dir, "q.npy", q, b, hq, nq, d).toString(),
                "--k", save(dir, "k.npy", k, b, hkv, nk, d).toString(), "--v", save(dir, "v.npy", v, b, hkv, nk, dv).toString(),
                "--pattern", spec, "--causal", "--key-lengths", "110,50", "--query-lengths", "90,33",
                "--out", dir.resolve("o.npy").toString(), "--lse", dir.resolve("lse.npy").toString());
        assertEquals(0, r.code(), r.err());

        AttentionProblem p = AttentionProblem.builder().batch(b).heads(hq).kvHeads(hkv).queryLength(nq).keyLength(nk)
                .headDim(d).valueDim(dv).causal(true).keyLengths(110, 50).queryLengths(90, 33).build();
        BlockLayout exported = ExplicitPattern.fromFile(layoutFile, 16).layout(nq, nk, hq, true);
        DenseOracle.Result expected = DenseOracle.compute(p, exported, Tensor.bhsd(q, b, hq, nq, d),
                Tensor.bhsd(k, b, hkv, nk, d), Tensor.bhsd(v, b, hkv, nk, dv));
        Tensor out = Tensor.bhsd(NpyArray.read(dir.resolve("o.npy")).toFloats(), b, hq, nq, dv);
        float[] lse = NpyArray.read(dir.resolve("lse.npy")).toFloats();
        Comparison.Outcome outcome = Comparison.compare(p, expected, out, lse, Tolerance.FP32);
        assertTrue(outcome.ok(), outcome.message());
    }

    @Test
    void badInputGetsOneLineAndExitTwo(@TempDir Path dir) throws Exception {
        Path q = save(dir, "q.npy", new float[2 * 10 * 4], 1, 2, 10, 4);
        Path wrongDim = save(dir, "k.npy", new float[2 * 10 * 3], 1, 2, 10, 3);
        Path truncated = dir.resolve("t.npy");
        Files.write(truncated, java.util.Arrays.copyOf(Files.readAllBytes(q), 100));
        Path rank3 = save(dir, "r.npy", new float[20], 2, 10, 1);
        for (Path k : new Path[] {wrongDim, truncated, rank3, dir.resolve("missing.npy")}) {
            Result r = run("run", "--q", q.toString(), "--k", k.toString(), "--v", q.toString(), "--pattern", "dense(block=4)",
                    "--out", dir.resolve("o.npy").toString());
            assertEquals(2, r.code(), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
            assertFalse(Files.exists(dir.resolve("o.npy")));
        }
        Result bad = run("run", "--q", q.toString(), "--k", q.toString(), "--v", q.toString(), "--pattern", "dense(block=4)",
                "--out", dir.resolve("o.npy").toString(), "--backend", "nope");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("'nope' is not on the class path"), bad.err());
        assertEquals(2, run("pattern", "window(blocks=2)", "--seq", "10").code());
        assertEquals(2, run("frobnicate").code());
    }

    @Test
    void float64InputIsConvertedWithAWarning(@TempDir Path dir) throws Exception {
        Path q = save(dir, "q.npy", randn(new Random(1), 40), 1, 1, 10, 4);
        Path k64 = dir.resolve("k64.npy");
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(40 * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 40; i++) {
            buf.putDouble(i * 0.01);
        }
        new NpyArray("<f8", new int[] {1, 1, 10, 4}, buf.array()).write(k64);
        Result r = run("run", "--q", q.toString(), "--k", k64.toString(), "--v", q.toString(), "--pattern", "dense(block=4)",
                "--out", dir.resolve("o.npy").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("float64 rounded to float32"), r.err());
    }

    @Test
    void conformanceQuickPassesForTheReferenceBackend() {
        Result r = run("conformance", "--backend", "reference", "--quick");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("required_rule01_outputMatchesOracle") && r.out().contains("50 passed, 0 failed, 1 skipped"),
                r.out());
        assertEquals(2, run("conformance", "--backend", "nope").code());
    }

    /** The tool's main job on tiny sizes: every contender checked, timed, tabulated, written as CSV and PNG. */
    @Test
    void compareWritesTableCsvAndPlot(@TempDir Path dir) throws Exception {
        Path csv = dir.resolve("compare.csv");
        Path png = dir.resolve("compare.png");
        Result r = run("compare", "--lengths", "256,128", "--heads", "2", "--head-dim", "16", "--reps", "3",
                "--pattern", "bigbird(block=32)", "--csv", csv.toString(), "--plot", png.toString(), "--no-machine-rate");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("reference    sparse       128"), r.out());
        assertTrue(r.out().contains("reference    sparse       256"), r.out());
        assertTrue(r.out().contains("torch-sdpa   dense        256"), r.out());
        assertTrue(r.out().contains("nd4j-dense   dense"), r.out());
        assertTrue(r.out().contains("cuda") && r.out().contains("unavailable"), r.out());
        List<String> lines = Files.readAllLines(csv);
        assertTrue(lines.get(0).startsWith("contender,kind,pass,precision,length,status,median_ms"), lines.get(0));
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("reference,sparse,fwd,fp32,256,\"ok\"")), lines.toString());
        byte[] head = Arrays.copyOf(Files.readAllBytes(png), 8);
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head, "a PNG file");
    }

    /** Nothing timed is "not run" (exit 4), not success: here every contender lacks a backward pass. */
    @Test
    void compareThatTimesNothingExitsFour() {
        Result r = run("compare", "--backward", "--no-peers", "--backends", "nd4j", "--lengths", "128", "--heads", "2",
                "--head-dim", "16", "--pattern", "bigbird(block=32)", "--no-machine-rate");
        assertEquals(4, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("skipped: no backward"), r.out());
        assertTrue(r.out().contains("nothing was timed"), r.out());
    }

    /** A bad number names its option and the value. */
    @Test
    void compareNamesTheOptionOutOfRange() {
        Result r = run("compare", "--max-call-seconds", "NaN", "--no-machine-rate");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("--max-call-seconds must be a finite number > 0, got NaN"), r.err());
        r = run("compare", "--lengths", "1024,0", "--no-machine-rate");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("--lengths must be >= 1, got 0"), r.err());
    }

    // ---- issue 12, item 10: outputs written atomically, never over an input or each other

    private record Inputs(Path q, Path k, Path v) {
    }

    private static Inputs inputs(Path dir) throws Exception {
        Random rnd = new Random(3);
        return new Inputs(save(dir, "q.npy", randn(rnd, 2 * 10 * 4), 1, 2, 10, 4),
                save(dir, "k.npy", randn(rnd, 2 * 12 * 4), 1, 2, 12, 4), save(dir, "v.npy", randn(rnd, 2 * 12 * 4), 1, 2, 12, 4));
    }

    private static Result runWith(Inputs in, String... outputs) {
        List<String> args = new java.util.ArrayList<>(List.of("run", "--q", in.q().toString(), "--k", in.k().toString(),
                "--v", in.v().toString(), "--pattern", "dense(block=4)"));
        args.addAll(List.of(outputs));
        return run(args.toArray(String[]::new));
    }

    /** Every file in the directory with its bytes, to show that a refused run changed nothing. */
    private static java.util.Map<String, String> snapshot(Path dir) throws Exception {
        java.util.Map<String, String> files = new java.util.TreeMap<>();
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) {
                files.put(p.getFileName().toString(), Files.isRegularFile(p) ? Arrays.toString(Files.readAllBytes(p)) : "?");
            }
        }
        return files;
    }

    // ---- issue 27, items 4 and 11: paths are the files they lead to, through links and ..

    @Test
    void outputsThatMeetThroughALinkAndDotDotAreRefusedBeforeTheCompute(@TempDir Path dir) throws Exception {
        Path tmp = dir.toRealPath();
        Inputs in = inputs(tmp);
        Files.createDirectories(tmp.resolve("other/sub"));
        Files.createSymbolicLink(tmp.resolve("a"), tmp.resolve("other/sub"));
        java.util.Map<String, String> before = snapshot(tmp.resolve("other"));
        Result r = runWith(in, "--out", tmp.resolve("a/../x.npy").toString(), "--lse", tmp.resolve("other/x.npy").toString());
        assertOneLineBadInput(r, "--out " + tmp.resolve("a/../x.npy"), "--lse " + tmp.resolve("other/x.npy"),
                "are the same file " + tmp.resolve("other/x.npy"));
        assertEquals(before, snapshot(tmp.resolve("other")));
        Path dout = save(tmp, "dout.npy", randn(new Random(4), 2 * 10 * 4), 1, 2, 10, 4);
        r = runWith(in, "--out", tmp.resolve("o.npy").toString(), "--dout", dout.toString(), "--dq",
                tmp.resolve("a/../g.npy").toString(), "--dk", tmp.resolve("other/g.npy").toString(), "--dv",
                tmp.resolve("dv.npy").toString());
        assertOneLineBadInput(r, "--dq " + tmp.resolve("a/../g.npy") + " and --dk", "are the same file");
        assertFalse(Files.exists(tmp.resolve("o.npy")));
    }

    @Test
    void anOutputThroughASymlinkedFolderNeverReplacesAnInput(@TempDir Path dir) throws Exception {
        Path tmp = dir.toRealPath();
        Path in = Files.createDirectory(tmp.resolve("in"));
        Inputs inputs = inputs(in);
        Files.createSymbolicLink(tmp.resolve("ln"), Path.of("in"));
        java.util.Map<String, String> before = snapshot(in);
        Result r = runWith(inputs, "--out", tmp.resolve("ln/q.npy").toString());
        assertOneLineBadInput(r, "(the file " + inputs.q() + ") is the same file as --q", "never writes over an input");
        assertEquals(before, snapshot(in));
    }

    @Test
    void aDanglingOutputLinkIsFollowedAndStaysALink(@TempDir Path dir) throws Exception {
        Path tmp = dir.toRealPath();
        Inputs in = inputs(tmp);
        Path target = Files.createDirectory(tmp.resolve("t")).resolve("o.npy");
        Path link = Files.createSymbolicLink(tmp.resolve("o.npy"), Path.of("t/o.npy"));
        Result r = runWith(in, "--out", link.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(Files.isSymbolicLink(link));
        assertTrue(Files.isRegularFile(target));
        assertEquals(java.util.Set.of("o.npy"), snapshot(tmp.resolve("t")).keySet(), "no temporary left beside the target");
    }

    @Test
    void theLongestLegalOutputNameIsWritten(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path o = dir.resolve("o".repeat(251) + ".npy");
        Result r = runWith(in, "--out", o.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(Files.isRegularFile(o));
        r = runWith(in, "--out", dir.resolve("o".repeat(252) + ".npy").toString());
        assertOneLineBadInput(r, "file name too long");
    }

    private static void assertOneLineBadInput(Result r, String... fragments) {
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "missing '" + f + "' in: " + r.err());
        }
    }

    @Test
    void anOutputThatNamesAnInputIsRefusedAndTheInputKept(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path link = Files.createSymbolicLink(dir.resolve("link.npy"), in.v());
        Path hard = Files.createLink(dir.resolve("hard.npy"), in.k());
        Files.createDirectory(dir.resolve("sub"));
        java.util.Map<String, String> before = snapshot(dir);
        String[][] cases = {
            {"--out", in.q().toString()},
            {"--out", dir.resolve(".").resolve("q.npy").toString()},
            {"--out", dir.resolve("sub").resolve("..").resolve("k.npy").toString()},
            {"--out", link.toString()},
            {"--out", hard.toString()},
            {"--out", dir.resolve("o.npy").toString(), "--lse", in.v().toString()},
        };
        for (String[] c : cases) {
            Result r = runWith(in, c);
            assertOneLineBadInput(r, "is the same file as --", "never writes over an input");
            assertEquals(before, snapshot(dir), String.join(" ", c));
        }
    }

    @Test
    void outAndLseNamingOneFileAreRefused(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path o = dir.resolve("o.npy");
        java.util.Map<String, String> before = snapshot(dir);
        assertOneLineBadInput(runWith(in, "--out", o.toString(), "--lse", o.toString()), "are the same file");
        assertOneLineBadInput(runWith(in, "--out", o.toString(), "--lse", dir.resolve(".").resolve("o.npy").toString()),
                "are the same file");
        assertEquals(before, snapshot(dir));
        Files.writeString(o, "previous");
        Path link = Files.createSymbolicLink(dir.resolve("olink.npy"), o);
        before = snapshot(dir);
        assertOneLineBadInput(runWith(in, "--out", o.toString(), "--lse", link.toString()), "are the same file");
        assertEquals(before, snapshot(dir));
    }

    @Test
    void aMissingOutputDirectoryIsNamedBeforeAnythingIsWritten(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path o = dir.resolve("o.npy");
        Files.writeString(o, "previous output");
        java.util.Map<String, String> before = snapshot(dir);
        Path missing = dir.resolve("nonexistent").resolve("dir").resolve("lse.npy");
        Result r = runWith(in, "--out", o.toString(), "--lse", missing.toString());
        assertOneLineBadInput(r);
        Path firstMissing = dir.resolve("nonexistent");
        assertEquals("starling: --lse " + missing + ": no such directory " + firstMissing, r.err().strip());
        assertEquals(before, snapshot(dir));
        r = runWith(in, "--out", missing.toString());
        assertEquals("starling: --out " + missing + ": no such directory " + firstMissing, r.err().strip());
        assertEquals(before, snapshot(dir));
    }

    @Test
    void aFailedRunLeavesThePreviousOutputsAndNoTemporaryFile(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path o = dir.resolve("o.npy");
        Path lse = dir.resolve("lse.npy");
        Files.writeString(o, "previous output");
        Files.writeString(lse, "previous lse");
        java.util.Map<String, String> before = snapshot(dir);
        assertEquals(2, runWith(in, "--out", o.toString(), "--lse", lse.toString(), "--backend", "nope").code());
        assertEquals(2, runWith(in, "--out", o.toString(), "--lse", lse.toString(), "--key-lengths", "99").code());
        assertEquals(before, snapshot(dir));
    }

    @Test
    void outputsAreReplacedWholeThroughLinksWithNoTemporaryLeft(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path o = dir.resolve("o.npy");
        Files.write(o, new byte[100_000]);
        Path real = dir.resolve("real-lse.npy");
        Files.writeString(real, "previous lse");
        Path lseLink = Files.createSymbolicLink(dir.resolve("lse.npy"), real);
        Result r = runWith(in, "--out", o.toString(), "--lse", lseLink.toString());
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(new int[] {1, 2, 10, 4}, NpyArray.read(o).shape());
        assertTrue(Files.isSymbolicLink(lseLink), "the link is kept and the file it points at replaced");
        assertArrayEquals(new int[] {1, 2, 10}, NpyArray.read(real).shape());
        assertEquals(java.util.Set.of("q.npy", "k.npy", "v.npy", "o.npy", "real-lse.npy", "lse.npy"), snapshot(dir).keySet());
    }

    @Test
    void patternNpyIsCheckedFirstAndWrittenAtomically(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("no").resolve("layout.npy");
        Result r = run("pattern", "dense(block=4)", "--seq", "16", "--npy", missing.toString());
        assertEquals("starling: --npy " + missing + ": no such directory " + dir.resolve("no"), r.err().strip());
        assertEquals(2, r.code());
        Path layout = dir.resolve("layout.npy");
        assertEquals(0, run("pattern", "dense(block=4)", "--seq", "16", "--npy", layout.toString()).code());
        java.util.Map<String, String> before = snapshot(dir);
        r = run("pattern", "layout(file=" + layout + ", block=4)", "--seq", "16", "--npy", layout.toString());
        assertOneLineBadInput(r, "is the same file as the layout file of --pattern");
        assertEquals(before, snapshot(dir));
    }

    // ---- issue 12, item 11: no @file expansion

    @Test
    void anArgumentStartingWithAtIsTakenLiterally(@TempDir Path dir) throws Exception {
        Path argFile = Files.writeString(dir.resolve("args.txt"), "backends\n");
        Result r = run("@" + argFile);
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("'@" + argFile + "'"), r.err());
        assertFalse(r.out().contains("priority"), r.out());

        Path specFile = Files.writeString(dir.resolve("spec.txt"), "dense(block=4)");
        r = run("pattern", "@" + specFile, "--seq", "16");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("@" + specFile), r.err());

        // A binary .npy behind an @ is never read into a message.
        Inputs in = inputs(dir);
        r = run("run", "--q", "@" + in.q(), "--k", in.k().toString(), "--v", in.v().toString(), "--pattern", "dense(block=4)",
                "--out", dir.resolve("o.npy").toString());
        assertOneLineBadInput(r, "@" + in.q() + ": no such file");
        assertFalse(r.err().contains("NUMPY"), r.err());
    }

    // ---- issue 12, item 12: messages and exit codes

    @Test
    void anOptionErrorIsOneLinePlusAPointerToHelp() {
        String[][] cases = {
            {"run", "--q", "q.npy"},
            {"pattern", "dense(block=4)", "--seq", "abc"},
            {"pattern", "dense(block=4)", "--seq", "16", "--bogus"},
            {"conformance", "--seed", "x"},
            {"frobnicate"},
            {"--nope"},
        };
        for (String[] c : cases) {
            Result r = run(c);
            assertEquals(2, r.code(), String.join(" ", c));
            List<String> lines = r.err().strip().lines().toList();
            assertEquals(2, lines.size(), r.err());
            String command = c[0].startsWith("-") || c[0].equals("frobnicate") ? "starling" : "starling " + c[0];
            assertTrue(lines.get(0).startsWith(command + ": "), r.err());
            assertEquals("Try '" + command + " --help' for more information.", lines.get(1));
            assertFalse(r.err().contains("Usage:"), r.err());
        }
        Result huge = run("pattern", "dense(block=4)", "--seq", "9".repeat(100_000));
        assertEquals(2, huge.code());
        assertTrue(huge.err().length() < 2 * StarlingCli.MAX_LINE, "clipped: " + huge.err().length());
    }

    @Test
    void ioErrorsNameTheFileAndTheCause(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Path sub = Files.createDirectory(dir.resolve("x"));
        Path o = dir.resolve("o.npy");
        Result r = run("run", "--q", in.q().toString(), "--k", sub.toString(), "--v", in.v().toString(),
                "--pattern", "dense(block=4)", "--out", o.toString());
        assertEquals(2, r.code());
        assertEquals("starling: --k " + sub + ": is a directory", r.err().strip());
        r = runWith(in, "--out", sub.toString());
        assertEquals("starling: --out " + sub + ": is a directory", r.err().strip());
        Path missing = dir.resolve("missing.npy");
        r = run("run", "--q", in.q().toString(), "--k", missing.toString(), "--v", in.v().toString(),
                "--pattern", "dense(block=4)", "--out", o.toString());
        assertEquals("starling: --k " + missing + ": no such file", r.err().strip());
        if (Files.exists(Path.of("/dev/null"))) {
            r = runWith(in, "--out", "/dev/null");
            assertEquals("starling: --out /dev/null: is a character device, not a regular file", r.err().strip());
            assertTrue(Files.exists(Path.of("/dev/null")));
        }
        Path fifo = dir.resolve("fifo.npy");
        boolean made;
        try {
            made = new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0;
        } catch (java.io.IOException e) {
            made = false;
        }
        if (made) {
            // Never opened: reading a FIFO with no writer would block for ever.
            r = run("run", "--q", in.q().toString(), "--k", fifo.toString(), "--v", in.v().toString(),
                    "--pattern", "dense(block=4)", "--out", o.toString());
            assertEquals("starling: --k " + fifo + ": is a FIFO, not a regular file", r.err().strip());
            r = runWith(in, "--lse", fifo.toString(), "--out", o.toString());
            assertEquals("starling: --lse " + fifo + ": is a FIFO, not a regular file", r.err().strip());
        }
        assertFalse(Files.exists(o));
    }

    @Test
    void anUnreadableInputIsNotAMissingOne(@TempDir Path dir) throws Exception {
        Inputs in = inputs(dir);
        Files.setPosixFilePermissions(in.k(), java.util.Set.of());
        Result r = runWith(in, "--out", dir.resolve("o.npy").toString());
        if (Files.isReadable(in.k())) {
            // Running as root, every file is readable: the run simply goes through.
            assertEquals(0, r.code(), r.err());
        } else {
            assertEquals("starling: " + in.k() + ": permission denied", r.err().strip());
        }
    }

    /** A command that fails the way a bug does, to check the mapping of internal errors. */
    @CommandLine.Command(name = "boom")
    static final class Boom implements java.util.concurrent.Callable<Integer> {
        @CommandLine.Option(names = "--kind")
        String kind;

        @Override
        public Integer call() {
            switch (kind) {
                case "npe" -> throw new NullPointerException("something was null");
                case "index" -> throw new IndexOutOfBoundsException("Index 7 out of bounds for length 3");
                case "assert" -> throw new AssertionError("invariant broken");
                case "state" -> throw new IllegalStateException("plan in an impossible state");
                case "stack" -> throw new StackOverflowError();
                default -> throw new IllegalArgumentException("bad kind " + kind);
            }
        }
    }

    private static Result runWithBoom(String... args) {
        CommandLine cl = StarlingCli.commandLine();
        cl.addSubcommand(new Boom());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void internalErrorsExitThreeInOneLineWithTheTraceOnlyWhenVerbose() {
        for (String kind : new String[] {"npe", "index", "assert", "state", "stack"}) {
            Result r = runWithBoom("boom", "--kind", kind);
            assertEquals(StarlingCli.INTERNAL_ERROR, r.code(), kind + ": " + r.err());
            assertEquals(3, StarlingCli.INTERNAL_ERROR);
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().startsWith("starling: internal error"), r.err());
            assertTrue(r.err().contains("--verbose"), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
            for (String[] verbose : new String[][] {{"--verbose", "boom", "--kind", kind}, {"boom", "--kind", kind, "--verbose"}}) {
                Result v = runWithBoom(verbose);
                assertEquals(3, v.code(), v.err());
                assertTrue(v.err().contains("\tat "), v.err());
            }
        }
        Result bad = runWithBoom("boom", "--kind", "x");
        assertEquals(2, bad.code());
        assertEquals("starling: bad kind x", bad.err().strip());
    }

    @Test
    void onlyKnownKindsOfFailureAreBadInput() {
        assertTrue(StarlingCli.isBadInput(new IllegalArgumentException("x")));
        assertTrue(StarlingCli.isBadInput(new dev.starling.api.pattern.PatternSyntaxException("a", 0, "b", null)));
        assertTrue(StarlingCli.isBadInput(new dev.starling.api.npy.NpyFormatException("f: truncated")));
        assertTrue(StarlingCli.isBadInput(new java.nio.file.NoSuchFileException("f")));
        assertTrue(StarlingCli.isBadInput(new dev.starling.api.selection.NoBackendException("none fits")));
        assertTrue(StarlingCli.isBadInput(new UnsupportedOperationException("no causal")));
        assertFalse(StarlingCli.isBadInput(new IllegalStateException("bug")));
        assertFalse(StarlingCli.isBadInput(new NullPointerException()));
        assertFalse(StarlingCli.isBadInput(new ArrayIndexOutOfBoundsException()));
        assertFalse(StarlingCli.isBadInput(new AssertionError()));
    }

    // ---- issue 12, item 13: a huge pattern text is echoed as a clipped window

    /** The echoed text and the caret line of a pattern error; the caret must sit under {@code expected}. */
    private static void assertCaretUnder(String err, char expected) {
        List<String> lines = err.lines().toList();
        int caretLine = -1;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).strip().equals("^")) {
                caretLine = i;
            }
        }
        assertTrue(caretLine > 0, err);
        int column = lines.get(caretLine).indexOf('^');
        assertEquals(expected, lines.get(caretLine - 1).charAt(column), err);
    }

    @Test
    void aHugePatternErrorEchoesOnlyAWindowAroundThePosition() {
        String junk = "x".repeat(1_000_000);
        Result r = run("pattern", "dense(block=4) " + junk, "--seq", "16");
        assertEquals(2, r.code());
        assertTrue(r.err().length() < 400, r.err().length() + " characters");
        assertTrue(r.err().contains("position 15") && r.err().contains("…"), r.err());
        assertCaretUnder(r.err(), 'x');

        String head = "union(" + "dense(block=4), ".repeat(50_000);
        r = run("pattern", head + "frob(block=4), dense(block=4))" + " ".repeat(1000), "--seq", "16");
        assertEquals(2, r.code());
        assertTrue(r.err().length() < 600, r.err().length() + " characters");
        assertTrue(r.err().contains("position " + head.length()), r.err());
        assertCaretUnder(r.err(), 'f');
        String echo = r.err().lines().filter(l -> l.startsWith("  …")).findFirst().orElse("");
        assertTrue(echo.endsWith("…"), "cut at both ends: " + r.err());

        // A problem that quotes the text (an unknown name of a million characters) is clipped too.
        r = run("pattern", "union(dense(block=4), " + "q".repeat(1_000_000) + ")", "--seq", "16");
        assertEquals(2, r.code());
        assertTrue(r.err().length() < 1000, r.err().length() + " characters");
        assertTrue(r.err().contains("known patterns"), r.err());
        assertCaretUnder(r.err(), 'q');

        // Short texts are echoed whole, as before; line breaks in the text do not move the caret.
        r = run("pattern", "dense(block=4)\n junk", "--seq", "16");
        assertTrue(r.err().contains("  dense(block=4)  junk\n"), r.err());
        assertCaretUnder(r.err(), 'j');
    }

    // ---- issue 12, item 14: a backend that cannot run here does not pass

    /** A backend that never runs here, like cuda without a GPU. */
    static final class NoDevice implements dev.starling.api.SparseAttention {
        @Override
        public String name() {
            return "nodevice";
        }

        @Override
        public int priority() {
            return 90;
        }

        @Override
        public dev.starling.api.Availability availability() {
            return dev.starling.api.Availability.unavailable("no test device here");
        }

        @Override
        public dev.starling.api.Capabilities capabilities() {
            return dev.starling.api.Capabilities.full("test device", java.util.Set.of(dev.starling.api.Precision.FP32));
        }

        @Override
        public dev.starling.api.AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
            throw new IllegalStateException("nodevice is unavailable");
        }
    }

    private static Result conformance(List<?> backends, String... args) {
        CommandLine cl = StarlingCli.commandLine();
        ((ConformanceCommand) cl.getSubcommands().get("conformance").getCommand()).backends =
                () -> dev.starling.api.selection.BackendSelector.of(backends, n -> null, n -> null);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        List<String> all = new java.util.ArrayList<>(List.of("conformance"));
        all.addAll(List.of(args));
        int code = cl.execute(all.toArray(String[]::new));
        return new Result(code, out.toString(), err.toString());
    }

    private static long count(String text, String fragment) {
        return text.lines().filter(l -> l.contains(fragment)).count();
    }

    @Test
    void aNamedBackendThatCannotRunHereIsNotRunAndDoesNotPass() {
        Result r = conformance(List.of(new NoDevice()), "--backend", "nodevice", "--quick");
        assertEquals(StarlingCli.NOT_RUN, r.code(), r.out());
        assertEquals(4, StarlingCli.NOT_RUN);
        assertEquals(1, r.out().strip().lines().count(), r.out());
        assertTrue(r.out().contains("nodevice") && r.out().contains("no test device here"), r.out());
        assertFalse(r.out().contains("passed"), r.out());

        r = conformance(List.of(new NoDevice()), "--backend", "all", "--quick");
        assertEquals(StarlingCli.NOT_RUN, r.code(), r.out());
        assertEquals(1, count(r.out(), "no test device here"), r.out());
    }

    @Test
    void allPassesWhenEveryAvailableBackendPassesAndListsTheOthersOnce() {
        dev.starling.api.SparseAttention reference = dev.starling.api.selection.BackendSelector.discover().byName("reference");
        Result r = conformance(List.of(new NoDevice(), reference), "--quick");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("50 passed, 0 failed, 1 skipped"), r.out());
        assertEquals(1, count(r.out(), "no test device here"), r.out());
        assertEquals(1, count(r.out(), "nodevice"), r.out());
    }

    /** Issue 18, item 4: --require-available makes a backend that cannot run fail the command, named or not. */
    @Test
    void requireAvailableTurnsNotRunIntoAFailureAndCanBeTurnedOff() {
        dev.starling.api.SparseAttention reference = dev.starling.api.selection.BackendSelector.discover().byName("reference");
        Result r = conformance(List.of(new NoDevice(), reference), "--only", "25", "--require-available");
        assertEquals(StarlingCli.NOT_RUN, r.code(), r.out());
        assertTrue(r.out().contains("1 passed, 0 failed, 0 skipped") && r.out().contains("no test device here"), r.out());
        r = conformance(List.of(new NoDevice()), "--backend", "nodevice", "--no-require-available");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("no test device here"), r.out());
    }

    /** A backend that writes zeros: every rule comparing numbers fails. */
    public static final class Zeros implements dev.starling.api.SparseAttention {
        /** Does nothing. */
        public Zeros() {
        }

        @Override
        public String name() {
            return "zeros";
        }

        @Override
        public int priority() {
            return 1;
        }

        @Override
        public dev.starling.api.Availability availability() {
            return dev.starling.api.Availability.available();
        }

        @Override
        public dev.starling.api.Capabilities capabilities() {
            return dev.starling.api.Capabilities.full("cpu", java.util.Set.of(dev.starling.api.Precision.FP32));
        }

        @Override
        public dev.starling.api.AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
            return new dev.starling.api.plan.BasePlan(this, problem, layout) {
                @Override
                protected void compute(dev.starling.api.Tensor q, dev.starling.api.Tensor k, dev.starling.api.Tensor v,
                                       dev.starling.api.Tensor out, float[] lse) {
                    java.util.Arrays.fill(out.data(), 0f);
                    if (lse != null) {
                        java.util.Arrays.fill(lse, 0f);
                    }
                }
            };
        }
    }

    /** Issue 18, item 5: the printed replay command, run again, meets the same failure; --only runs only its rules. */
    @Test
    void aFailurePrintsTheRunSeedAndAReplayThatReproducesIt() {
        Result r = conformance(List.of(new Zeros()), "--backend", "zeros", "--seed", "314", "--only", "1,22");
        assertEquals(StarlingCli.CHECK_FAILED, r.code(), r.out());
        assertTrue(r.out().contains("0 passed, 2 failed, 0 skipped"), r.out());
        String replay = r.out().lines().filter(l -> l.contains("replay: ") && l.contains("--only 22")).findFirst()
                .orElseThrow(() -> new AssertionError(r.out()));
        assertTrue(replay.contains("run seed 314; replay: starling conformance --backend zeros --seed 314 --only 22"), replay);
        String[] args = replay.substring(replay.indexOf("conformance ") + "conformance ".length()).split(" ");
        Result again = conformance(List.of(new Zeros()), args);
        assertEquals(StarlingCli.CHECK_FAILED, again.code(), again.out());
        String failure = r.out().lines().filter(l -> l.contains("required_rule22_featureCombinations")).findFirst().orElseThrow();
        assertTrue(again.out().contains(failure), again.out());
        assertEquals(1, count(again.out(), "required_rule"), again.out());
        assertEquals(StarlingCli.BAD_INPUT, conformance(List.of(new Zeros()), "--only", "99").code());
    }

    /** The case of the report: cuda on a machine without a GPU. */
    @Test
    void conformanceOfCudaWithoutAGpuExitsNotRun() {
        var cuda = dev.starling.api.selection.BackendSelector.discover().reports().stream()
                .filter(x -> x.name().equals("cuda")).findFirst();
        assertTrue(cuda.isPresent(), "the tool's class path has the cuda backend");
        if (cuda.get().usable()) {
            // A machine with a GPU: the backend is listed as available instead.
            assertTrue(run("backends").out().contains("cuda"));
            return;
        }
        Result r = run("conformance", "--backend", "cuda", "--quick");
        assertEquals(4, r.code(), r.out());
        assertEquals(1, r.out().strip().lines().count(), r.out());
        assertTrue(r.out().contains(cuda.get().availability().reason()), r.out());
    }
}
