package dev.starling.bench.compare;

import dev.starling.api.selection.BackendSelector;
import dev.starling.bench.output.StagedFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/** Runs a comparison and prints the table, the oracle check, the machine's rate and the headline ratios. */
public final class CompareMain {

    private CompareMain() {
    }

    /**
     * Runs the comparison and prints everything; writes the CSV and the plot, if asked, together
     * and atomically ({@link StagedFiles}) at the end.
     *
     * @param config what to compare
     * @param out where the report goes
     * @param csv CSV file or null
     * @param plot PNG file or null
     * @param machineRate whether to measure the machine's matrix-product rate
     * @return 0, or 1 when a contender disagreed with the oracle
     * @throws IllegalArgumentException if {@code config} names a backend that was not found
     * @throws IOException if the CSV or the plot cannot be written
     */
    public static int run(CompareRun.Config config, PrintWriter out, Path csv, Path plot, boolean machineRate)
            throws IOException {
        long start = System.nanoTime();
        CompareRun run = new CompareRun(config, BackendSelector.discover().reports(),
                new Progress(System.err, System.console() != null));
        out.printf(Locale.ROOT, "starling compare: %s, batch %d, %d heads, head dim %d; lengths %s%n",
                config.pattern().text(), config.batch(), config.heads(), config.headDim(),
                java.util.Arrays.stream(config.lengths()).mapToObj(n -> String.format(Locale.ROOT, "%,d", n))
                        .collect(Collectors.joining(", ")));
        out.println("each contender is checked against dense float64 attention on the smallest length (at most "
                + String.format(Locale.ROOT, "%,d", CompareRun.MAX_CHECK_LENGTH) + " tokens) first, then timed");
        out.flush();
        CompareRun.Outcome outcome = run.run(out);
        out.println();
        CompareReport.table(out, outcome.cells());
        double rate = Double.NaN;
        if (machineRate) {
            out.println();
            out.println("machine: single-precision matrix product, 2048 x 2048 x 2048, median of 3");
            for (MachineRate.Rate r : MachineRate.measure(2048, 3)) {
                out.printf(Locale.ROOT, "  %-24s %8.1f GFLOP/s  %s%n", r.library(), r.gflops(), r.note());
                if (!Double.isNaN(r.gflops())) {
                    rate = Double.isNaN(rate) ? r.gflops() : Math.max(rate, r.gflops());
                }
            }
        }
        headlines(out, outcome.cells(), rate);
        write(out, outcome.cells(), config, csv, plot);
        boolean wrong = outcome.checks().stream().anyMatch(CompareRun.Check::wrong);
        out.printf(Locale.ROOT, "done in %s%s%n", duration(System.nanoTime() - start),
                wrong ? "; a contender disagreed with the oracle (exit 1)" : "");
        out.flush();
        return wrong ? 1 : 0;
    }

    /** Stages the CSV and the plot, then renames both into place: all or nothing. */
    private static void write(PrintWriter out, List<CompareRun.Cell> cells, CompareRun.Config config, Path csv, Path plot)
            throws IOException {
        boolean anyTime = cells.stream().anyMatch(CompareRun.Cell::ok);
        if (plot != null && !anyTime) {
            out.println("--plot " + plot + " not written: no contender produced a time");
            plot = null;
        }
        if (csv == null && plot == null) {
            return;
        }
        String title = config.pattern().text() + ", batch " + config.batch() + ", " + config.heads() + " heads, head dim "
                + config.headDim();
        try (StagedFiles files = new StagedFiles()) {
            if (csv != null) {
                files.stage(csv, s -> CompareReport.csv(s, cells));
            }
            if (plot != null) {
                files.stage(plot, s -> CompareReport.plot(s, cells, title));
            }
            files.commit();
        }
        if (csv != null) {
            out.println("wrote " + csv);
        }
        if (plot != null) {
            out.println("wrote " + plot);
        }
    }

    /** {@code "4 min 12 s"}, {@code "38.2 s"}. */
    static String duration(long nanos) {
        double s = nanos / 1e9;
        if (s < 60) {
            return String.format(Locale.ROOT, "%.1f s", s);
        }
        long whole = Math.round(s);
        return String.format(Locale.ROOT, "%d min %d s", whole / 60, whole % 60);
    }

    /**
     * How the best sparse backend compares with the fastest dense peer: {@code "10.2x faster"} or
     * {@code "5.0x slower"}.
     *
     * @param sparseMs best sparse time
     * @param denseMs fastest dense time
     * @return the words
     */
    static String speed(double sparseMs, double denseMs) {
        return sparseMs <= denseMs ? String.format(Locale.ROOT, "%.1fx faster", denseMs / sparseMs)
                : String.format(Locale.ROOT, "%.1fx slower", sparseMs / denseMs);
    }

    /** The three figures the benchmarks page reports against. */
    private static void headlines(PrintWriter out, List<CompareRun.Cell> cells, double rate) {
        out.println();
        int[] lengths = cells.stream().filter(CompareRun.Cell::ok).mapToInt(CompareRun.Cell::length).distinct().sorted().toArray();
        for (int n : lengths) {
            OptionalDouble sparse = best(cells, n, false);
            OptionalDouble dense = best(cells, n, true);
            if (sparse.isPresent() && dense.isPresent()) {
                out.printf(Locale.ROOT, "N=%,d: best sparse backend %.1f ms, fastest dense peer %.1f ms: sparse is %s%n", n,
                        sparse.getAsDouble(), dense.getAsDouble(), speed(sparse.getAsDouble(), dense.getAsDouble()));
            }
        }
        if (lengths.length >= 2) {
            int a = lengths[lengths.length - 2];
            int b = lengths[lengths.length - 1];
            OptionalDouble ta = best(cells, a, false);
            OptionalDouble tb = best(cells, b, false);
            if (ta.isPresent() && tb.isPresent()) {
                out.printf(Locale.ROOT, "best sparse backend from N=%,d to N=%,d (%.0fx the tokens): time grows %.2fx%n", a, b,
                        (double) b / a, tb.getAsDouble() / ta.getAsDouble());
            }
        }
        if (!Double.isNaN(rate)) {
            cells.stream().filter(c -> c.ok() && !c.dense()).mapToDouble(CompareRun.Cell::gflops).max().ifPresent(g ->
                    out.printf(Locale.ROOT, "best sparse useful rate %.1f GFLOP/s = %.0f%% of the machine's %.1f GFLOP/s%n",
                            g, 100 * g / rate, rate));
        }
    }

    private static OptionalDouble best(List<CompareRun.Cell> cells, int n, boolean dense) {
        return cells.stream().filter(c -> c.ok() && c.length() == n && c.dense() == dense)
                .mapToDouble(CompareRun.Cell::medianMs).min();
    }
}
