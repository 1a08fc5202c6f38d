package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code starling compare}'s options, exit codes and report (issue 13, items 6 and 7). */
class CompareCommandTest {

    private static CompareCommand parse(String... args) {
        CommandLine cl = StarlingCli.commandLine();
        CommandLine.ParseResult parsed = cl.parseArgs(args);
        return (CompareCommand) parsed.subcommand().commandSpec().userObject();
    }

    @Test
    void machineRateIsOnByDefaultAndTheOptionsSayWhatTheyDo() {
        assertTrue(parse("compare").machineRate);
        assertTrue(parse("compare", "--machine-rate").machineRate);
        assertFalse(parse("compare", "--no-machine-rate").machineRate);
    }

    @Test
    void anUnknownBackendIsBadInputThatListsTheNamesFound() {
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--backends", "nope", "--no-peers", "--lengths", "64");
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("no backend named 'nope'") && r.err().contains("found: ") && r.err().contains("reference"),
                r.err());
        assertFalse(r.out().contains("contender"), "nothing was timed: " + r.out());
    }

    @Test
    void unwritableOrCollidingOutputsAreRefusedBeforeAnythingIsTimed(@TempDir Path dir) throws Exception {
        Path sub = Files.createDirectory(dir.resolve("sub"));
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--backends", "reference", "--no-peers", "--csv", sub.toString());
        assertEquals(StarlingCli.BAD_INPUT, r.code());
        assertEquals("starling: --csv " + sub + ": is a directory", r.err().strip());
        Path same = dir.resolve("x");
        r = StarlingCliTest.run("compare", "--backends", "reference", "--no-peers", "--csv", same.toString(), "--plot",
                dir.resolve(".").resolve("x").toString());
        assertEquals(StarlingCli.BAD_INPUT, r.code());
        assertTrue(r.err().contains("--csv " + same + " and --plot " + dir.resolve(".").resolve("x") + " are the same file"), r.err());
        assertFalse(r.out().contains("contender"), r.out());
        assertFalse(Files.exists(same));
    }

    /** One small run, reference only: the oracle line, the legend, memory for a pure-Java backend, done, files. */
    @Test
    void theReportConfirmsTheOracleExplainsItsColumnsAndEndsWithDone(@TempDir Path dir) throws Exception {
        Path csv = Files.writeString(dir.resolve("compare.csv"), "previous");
        Path png = dir.resolve("compare.png");
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--backends", "reference", "--no-peers", "--lengths",
                "256,128", "--heads", "2", "--head-dim", "16", "--reps", "3", "--pattern", "bigbird(block=32)",
                "--csv", csv.toString(), "--plot", png.toString(), "--no-machine-rate");
        assertEquals(0, r.code(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("oracle check: the one contender agreed with dense float64 attention on N=128, B=1, H=2, D=16"),
                out);
        assertTrue(out.contains("x fastest   time / the fastest contender's time at this length"), out);
        assertTrue(out.contains("(3)"), out);
        assertFalse(out.contains("machine:"), "--no-machine-rate: " + out);
        List<String> lines = out.strip().lines().toList();
        assertTrue(lines.get(lines.size() - 1).startsWith("done in "), lines.get(lines.size() - 1));

        List<String> rows = Files.readAllLines(csv);
        assertTrue(rows.get(0).endsWith(",peak_mb"), rows.get(0));
        List<String> reference = rows.stream().filter(l -> l.startsWith("reference,sparse,")).toList();
        assertEquals(2, reference.size(), rows.toString());
        for (String row : reference) {
            String[] f = row.split(",");
            assertTrue(Double.parseDouble(f[f.length - 1]) > 0, "a pure-Java backend's memory shows up: " + row);
        }
        assertTrue(Files.size(png) > 1000);
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of("compare.csv", "compare.png"), files.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary file is left beside the outputs");
        }
    }

    @Test
    void aMillionTokensIsAnOptInLength() {
        assertArrayEquals(new int[] {16384, 65536, 1048576}, parse("compare", "--lengths", "1048576,16384,65536").lengths());
        assertArrayEquals(new int[] {1024, 4096, 16384, 65536, 1048576}, parse("compare", "--long").lengths());
        assertArrayEquals(new int[] {1024, 4096, 16384, 65536}, parse("compare").lengths(), "not by default");
    }

    /** Surefire's heap is 1 GB: a million tokens are refused in one line that says what to set, before anything runs. */
    @Test
    void aHeapTooSmallForTheLongestLengthIsOneLineThatSaysWhatToSet() {
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--lengths", "1024,1048576", "--backends", "reference",
                "--no-machine-rate");
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("starling: N=1,048,576 needs about 10.0 GiB of Java heap")
                && r.err().contains("STARLING_JAVA_OPTS=-Xmx11g"), r.err());
        assertFalse(r.out().contains("contender"), "nothing was timed: " + r.out());
    }

    @Test
    void runningOutOfHeapIsOneLineOfBadUsageNotAStackTrace() {
        java.io.StringWriter err = new java.io.StringWriter();
        int code = StarlingCli.report(new OutOfMemoryError("Java heap space"), new java.io.PrintWriter(err), false);
        assertEquals(StarlingCli.BAD_INPUT, code);
        long max = Runtime.getRuntime().maxMemory();
        assertEquals("starling: out of memory (Java heap space) with this JVM's " + String.format(java.util.Locale.ROOT,
                "%.1f", max / 1073741824.0) + " GiB of heap; give it more with STARLING_JAVA_OPTS=-Xmx<size>, e.g. "
                + "STARLING_JAVA_OPTS=-Xmx" + Math.max(2, 2 * (max >> 30)) + "g ./starling ...", err.toString().strip());
        err.getBuffer().setLength(0);
        // Issue 27, item 10: a thread limit is not the heap.
        code = StarlingCli.report(new OutOfMemoryError("unable to create native thread: possibly out of memory or "
                + "process/resource limits reached"), new java.io.PrintWriter(err), false);
        assertEquals(StarlingCli.BAD_INPUT, code);
        assertTrue(err.toString().startsWith("starling: cannot start another thread (unable to create native thread")
                && err.toString().contains("not the Java heap") && err.toString().strip().lines().count() == 1, err.toString());
    }

    /** A tiny --backward run: both passes per contender, torch-sdpa through autograd, ratios, the ND4J peer skipped. */
    @Test
    void backwardTimesForwardAndForwardPlusBackwardAndSaysWhoHasNoBackward() {
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--backward", "--backends", "reference", "--lengths", "128",
                "--heads", "2", "--head-dim", "16", "--reps", "3", "--pattern", "bigbird(block=32)", "--no-machine-rate");
        assertEquals(0, r.code(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("oracle check: all 2 contenders agreed") && out.contains("gradients dq, dk, dv"), out);
        for (String row : new String[] {"reference", "torch-sdpa"}) {
            assertTrue(out.lines().anyMatch(l -> l.startsWith(row) && l.contains(" fwd ") && l.contains("128")), row + ":\n" + out);
            assertTrue(out.lines().anyMatch(l -> l.startsWith(row) && l.contains(" fwd+bwd ")), row + ":\n" + out);
            assertTrue(out.contains(row + " N=128: fwd+bwd / fwd = "), out);
        }
        assertTrue(out.lines().anyMatch(l -> l.startsWith("nd4j-dense") && l.contains("skipped: no backward")), out);
        assertTrue(out.contains("N=128 fwd+bwd: best sparse backend"), out);
    }

    /** Issue 25: --precision reads fp32 and bf16, each once, in order; fp32 alone by default; anything else is refused. */
    @Test
    void precisionIsFp32ByDefaultAndReadsFp32AndBf16() {
        assertEquals(List.of("fp32"), parse("compare").precision);
        assertEquals(List.of(Precision.FP32), CompareCommand.precisions(parse("compare").precision));
        assertEquals(List.of(Precision.FP32, Precision.BF16),
                CompareCommand.precisions(parse("compare", "--precision", "bf16,FP32,bf16").precision));
        assertEquals(List.of(Precision.BF16), CompareCommand.precisions(List.of(" bfloat16 ")));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> CompareCommand.precisions(List.of("fp32", "fp16")));
        assertEquals("--precision: unknown precision 'fp16': compare times fp32, bf16 or both (--precision fp32,bf16)",
                e.getMessage());
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--precision", "tf32", "--backends", "reference",
                "--no-peers", "--lengths", "64", "--no-machine-rate");
        assertEquals(StarlingCli.BAD_INPUT, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("unknown precision 'tf32'"), r.err());
        assertFalse(r.out().contains("contender"), "nothing was timed: " + r.out());
    }

    /**
     * A tiny fp32,bf16 run: reference and nd4j-dense have no bf16 and are listed, not timed, in it; native and
     * torch-sdpa are checked against the oracle within the bf16 row and timed in both; the CSV has a precision
     * column.
     */
    @Test
    void bf16TimesWhoHasItAndListsWhoDoesNot(@TempDir Path dir) throws Exception {
        Path csv = dir.resolve("p.csv");
        StarlingCliTest.Result r = StarlingCliTest.run("compare", "--precision", "fp32,bf16", "--backends", "reference,native",
                "--lengths", "128", "--heads", "2", "--head-dim", "16", "--reps", "3", "--pattern", "bigbird(block=32)",
                "--no-machine-rate", "--csv", csv.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("precisions fp32, bf16"), out);
        assertTrue(out.contains("oracle check: all 6 contenders and precisions agreed") && out.contains("FP32 and BF16 tolerance"),
                out);
        for (String row : new String[] {"reference", "nd4j-dense"}) {
            assertTrue(out.lines().anyMatch(l -> l.startsWith(row) && l.contains(" bf16 ") && l.contains("no bf16 (runs fp32)")),
                    row + ":\n" + out);
            assertFalse(out.lines().anyMatch(l -> l.startsWith(row) && l.contains(" bf16 ") && l.contains("128")), out);
        }
        for (String row : new String[] {"native", "torch-sdpa"}) {
            for (String p : new String[] {" fp32 ", " bf16 "}) {
                assertTrue(out.lines().anyMatch(l -> l.startsWith(row) && l.contains(p) && l.contains("128")), row + p + ":\n"
                        + out);
            }
        }
        assertTrue(out.contains("N=128 bf16: best sparse backend"), out);
        assertTrue(out.contains("torch-sdpa bf16 is about") && out.contains("torch-sdpa fp32 is about"), out);
        List<String> rows = Files.readAllLines(csv);
        assertTrue(rows.stream().anyMatch(l -> l.startsWith("native,sparse,fwd,bf16,128,\"ok\",")), rows.toString());
        assertTrue(rows.stream().anyMatch(l -> l.startsWith("reference,sparse,fwd,bf16,0,\"no bf16")), rows.toString());
    }
}
