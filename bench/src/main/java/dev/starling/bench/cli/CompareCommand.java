package dev.starling.bench.cli;

import dev.starling.api.Precision;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.bench.compare.CompareMain;
import dev.starling.bench.compare.CompareRun;
import dev.starling.api.io.TouchedFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code starling compare}: every backend and the dense peers, side by side, length by length. */
@Command(name = "compare", mixinStandardHelpOptions = true,
        description = {"Time every backend found and the dense peers on one sparse pattern, length by length.",
            "Every contender is first checked against dense float64 attention on the smallest length (at most 2,048 "
                + "tokens); then each length gets a timed warm-up (at least 1 s and 3 calls) and several timed calls. Prints "
                + "median times, spread, useful GFLOP/s, time relative to the fastest and peak memory, with a legend; --csv "
                + "and --plot also write them to files. Dense peers: PyTorch's fused scaled_dot_product_attention (libtorch "
                + "through the JavaCPP presets) and ND4J, computing full attention on the same shapes. --backward times "
                + "forward + backward too; --long adds 65,536 and 1,048,576 tokens (about 10 GiB of heap: "
                + "STARLING_JAVA_OPTS=-Xmx12g); --precision fp32,bf16 times each contender in each precision it runs."})
final class CompareCommand implements Callable<Integer> {
    /** What {@code --long} adds. */
    static final int[] LONG_LENGTHS = {65_536, 1_048_576};

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--pattern", paramLabel = "SPEC", defaultValue = "bigbird(block=64, window=3, global=2, random=3, seed=0)",
            description = "sparse pattern (default: ${DEFAULT-VALUE})")
    String pattern;
    @Option(names = "--lengths", paramLabel = "N", split = ",", defaultValue = "1024,4096,16384,65536",
            description = "sequence lengths (default: ${DEFAULT-VALUE})")
    int[] lengths;
    @Option(names = "--long",
            description = "also run 65,536 and 1,048,576 tokens (sparse backends only there; needs about 10 GiB of Java "
                    + "heap, 20 GiB with --backward: STARLING_JAVA_OPTS=-Xmx12g)")
    boolean longLengths;
    @Option(names = "--backward",
            description = "time forward + backward as well as the forward alone, for each contender with a backward pass "
                    + "(backends declaring feature BACKWARD; torch-sdpa through libtorch autograd); the others are "
                    + "listed as skipped")
    boolean backward;
    @Option(names = "--precision", paramLabel = "P", split = ",", defaultValue = "fp32",
            description = "precisions to time each contender in: fp32, bf16 or both (fp32,bf16). In bf16 the inputs are the "
                    + "same random values rounded to bf16, each contender computes in its bf16 arithmetic (backends "
                    + "declaring it, torch-sdpa on at::kBFloat16 tensors) and is checked within the kit's bf16 tolerance; "
                    + "one without it is listed as \"no bf16\", not timed (default: ${DEFAULT-VALUE})")
    List<String> precision;
    @Option(names = "--batch", paramLabel = "B", defaultValue = "1", description = "batch size (default: ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--heads", paramLabel = "H", defaultValue = "8", description = "heads (default: ${DEFAULT-VALUE})")
    int heads;
    @Option(names = "--head-dim", paramLabel = "D", defaultValue = "64", description = "head dim (default: ${DEFAULT-VALUE})")
    int headDim;
    @Option(names = "--backends", paramLabel = "NAME", split = ",",
            description = "backends to include (default: every one found); an unknown name is an error that lists the names found")
    List<String> backends;
    @Option(names = "--no-peers", description = "leave out the dense peers")
    boolean noPeers;
    @Option(names = "--reps", paramLabel = "R", defaultValue = "5",
            description = "most timed calls per contender and length (default: ${DEFAULT-VALUE})")
    int reps;
    @Option(names = "--cell-seconds", paramLabel = "S", defaultValue = "20",
            description = "time budget per contender and length: slow ones get fewer timed calls, at least 3 (default: ${DEFAULT-VALUE})")
    double cellSeconds;
    @Option(names = "--max-call-seconds", paramLabel = "S", defaultValue = "60",
            description = "skip a contender at a length where one call is predicted (from its rate at the previous length; a "
                    + "dense peer not yet timed at 1,000 GFLOP/s) to take longer (default: ${DEFAULT-VALUE})")
    double maxCallSeconds;
    @Option(names = "--dense-memory", paramLabel = "GIB", defaultValue = "8",
            description = "GiB the dense peers may use for one head's scores; longer lengths are skipped (default: ${DEFAULT-VALUE})")
    double denseGiB;
    @Option(names = "--csv", paramLabel = "FILE", description = "also write the results as CSV")
    Path csv;
    @Option(names = "--plot", paramLabel = "FILE.png", description = "also draw time against length, log-log, as PNG")
    Path plot;
    // negatable + defaultValue "true" alone makes the plain form set false (picocli flips the default); the
    // fallbackValue makes --machine-rate mean true and --no-machine-rate false.
    @Option(names = "--machine-rate", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "measure the machine's single-precision matrix-product rate (ND4J and libtorch, a few seconds) "
                    + "and compare the best sparse rate with it; --no-machine-rate skips it (default: on)")
    boolean machineRate;

    @Override
    public Integer call() throws IOException {
        if (lengths.length == 0) {
            throw new IllegalArgumentException("--lengths is empty: give at least one length >= 1");
        }
        for (int n : lengths) {
            atLeastOne("--lengths", n);
        }
        atLeastOne("--batch", batch);
        atLeastOne("--heads", heads);
        atLeastOne("--head-dim", headDim);
        atLeastOne("--reps", reps);
        positive("--cell-seconds", cellSeconds);
        positive("--max-call-seconds", maxCallSeconds);
        positive("--dense-memory", denseGiB);
        PatternSpec spec = Patterns.parse(pattern);
        checkOutputs(spec);
        int[] sorted = lengths();
        CompareRun.Config config = new CompareRun.Config(spec, batch, heads, headDim, sorted,
                backends == null ? List.of() : backends.stream().map(s -> s.strip().toLowerCase(java.util.Locale.ROOT))
                        .distinct().toList(), !noPeers, reps, cellSeconds, (long) (denseGiB * (1L << 30)), backward,
                maxCallSeconds, precisions(precision));
        return CompareMain.run(config, this.spec.commandLine().getOut(), csv, plot, machineRate);
    }

    /**
     * Reads {@code --precision}: each name once, in {@link Precision} order.
     *
     * @param names the values given, e.g. {@code [bf16, fp32]}
     * @return the precisions, e.g. {@code [FP32, BF16]}
     * @throws IllegalArgumentException naming the value and the precisions {@code compare} times
     */
    static List<Precision> precisions(List<String> names) {
        java.util.EnumSet<Precision> out = java.util.EnumSet.noneOf(Precision.class);
        for (String name : names) {
            Precision p = switch (name.strip().toLowerCase(java.util.Locale.ROOT)) {
                case "fp32", "float32" -> Precision.FP32;
                case "bf16", "bfloat16" -> Precision.BF16;
                default -> null;
            };
            if (p == null || !CompareRun.PRECISIONS.contains(p)) {
                throw new IllegalArgumentException("--precision: unknown precision '" + name.strip() + "': compare times fp32, "
                        + "bf16 or both (--precision fp32,bf16)");
            }
            out.add(p);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("--precision is empty: give fp32, bf16 or both");
        }
        return List.copyOf(out);
    }

    private static void atLeastOne(String option, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(option + " must be >= 1, got " + value);
        }
    }

    private static void positive(String option, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new IllegalArgumentException(option + " must be a finite number > 0, got " + value);
        }
    }

    /** @return the lengths to run, ascending, each once: {@code --lengths} and what {@code --long} adds */
    int[] lengths() {
        return IntStream.concat(Arrays.stream(lengths), longLengths ? Arrays.stream(LONG_LENGTHS) : IntStream.empty())
                .distinct().sorted().toArray();
    }

    /** Refuses unwritable outputs before minutes of timing, and outputs that name each other or an input. */
    private void checkOutputs(PatternSpec spec) throws IOException {
        TouchedFiles files = new TouchedFiles("compare");
        RunCommand.layoutFiles(spec, files);
        if (csv != null) {
            files.output("--csv", csv);
        }
        if (plot != null) {
            files.output("--plot", plot);
        }
    }
}
