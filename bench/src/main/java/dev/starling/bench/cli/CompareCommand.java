package dev.starling.bench.cli;

import dev.starling.api.pattern.Patterns;
import dev.starling.bench.compare.CompareMain;
import dev.starling.bench.compare.CompareRun;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code starling compare}: every backend and the dense peers, side by side, length by length. */
@Command(name = "compare", mixinStandardHelpOptions = true,
        description = {"Time every available backend on a sparse pattern and the dense peers (PyTorch via DJL, ND4J) on the",
            "same shapes; each is first checked against dense float64 attention on the smallest length.",
            "Prints a table of median times, spread, useful GFLOP/s, time relative to the fastest and peak memory."})
final class CompareCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--pattern", defaultValue = "bigbird(block=64, window=3, global=2, random=3, seed=0)",
            description = "pattern (default: ${DEFAULT-VALUE})")
    String pattern;
    @Option(names = "--lengths", split = ",", defaultValue = "1024,4096,16384,65536",
            description = "sequence lengths (default: ${DEFAULT-VALUE})")
    int[] lengths;
    @Option(names = "--batch", defaultValue = "1", description = "batch (default: ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--heads", defaultValue = "8", description = "heads (default: ${DEFAULT-VALUE})")
    int heads;
    @Option(names = "--head-dim", defaultValue = "64", description = "head dim (default: ${DEFAULT-VALUE})")
    int headDim;
    @Option(names = "--backends", split = ",", description = "backends to include (default: every one found)")
    List<String> backends;
    @Option(names = "--no-peers", description = "leave out the dense peers")
    boolean noPeers;
    @Option(names = "--reps", defaultValue = "5", description = "most timed calls per cell (default: ${DEFAULT-VALUE})")
    int reps;
    @Option(names = "--cell-seconds", defaultValue = "20",
            description = "time budget per cell; slow cells get fewer calls, at least 3 (default: ${DEFAULT-VALUE})")
    double cellSeconds;
    @Option(names = "--dense-memory", defaultValue = "8", description = "GiB the dense peers may use (default: ${DEFAULT-VALUE})")
    double denseGiB;
    @Option(names = "--csv", paramLabel = "FILE", description = "also write the results as CSV")
    Path csv;
    @Option(names = "--plot", paramLabel = "FILE.png", description = "also draw time against length, log-log, as PNG")
    Path plot;
    @Option(names = "--machine-rate", negatable = true, defaultValue = "true",
            description = "measure the machine's matrix-product rate too (default: ${DEFAULT-VALUE})")
    boolean machineRate;

    @Override
    public Integer call() throws Exception {
        if (lengths.length == 0 || Arrays.stream(lengths).anyMatch(n -> n < 1) || batch < 1 || heads < 1 || headDim < 1
                || reps < 1) {
            throw new IllegalArgumentException("--lengths, --batch, --heads, --head-dim and --reps must be >= 1");
        }
        int[] sorted = Arrays.stream(lengths).sorted().toArray();
        CompareRun.Config config = new CompareRun.Config(Patterns.parse(pattern), batch, heads, headDim, sorted,
                backends == null ? List.of() : backends.stream().map(String::toLowerCase).toList(), !noPeers, reps,
                cellSeconds, (long) (denseGiB * (1L << 30)));
        return CompareMain.run(config, spec.commandLine().getOut(), csv, plot, machineRate);
    }
}
