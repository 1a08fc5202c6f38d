package dev.starling.bench.compare;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;

/** Runs a comparison and prints the table, the machine's rate and the headline ratios. */
public final class CompareMain {

    private CompareMain() {
    }

    /**
     * @param config what to compare
     * @param out where the table goes
     * @param csv CSV file or null
     * @param plot PNG file or null
     * @param machineRate whether to measure the machine's matrix-product rate
     * @return 0, or 1 when a contender disagreed with the oracle
     * @throws IOException if the CSV or the plot cannot be written
     */
    public static int run(CompareRun.Config config, PrintWriter out, Path csv, Path plot, boolean machineRate)
            throws IOException {
        out.printf(Locale.ROOT, "starling compare: %s, batch %d, %d heads, head dim %d; lengths %s%n",
                config.pattern().text(), config.batch(), config.heads(), config.headDim(),
                java.util.Arrays.toString(config.lengths()));
        out.println("each contender is checked against dense float64 attention on the smallest length first; times are "
                + "medians after one warm-up call");
        out.flush();
        List<CompareRun.Cell> cells = new CompareRun(config, new Progress(System.err, System.console() != null)).run(out);
        out.println();
        CompareReport.table(out, cells);
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
        headlines(out, cells, rate);
        if (csv != null) {
            CompareReport.csv(csv, cells);
            out.println("wrote " + csv);
        }
        if (plot != null) {
            CompareReport.plot(plot, cells, config.pattern().text() + ", " + config.heads() + " heads, head dim "
                    + config.headDim());
            out.println("wrote " + plot);
        }
        out.flush();
        return cells.stream().anyMatch(c -> c.status().startsWith("WRONG")) ? 1 : 0;
    }

    /** The three figures the benchmarks page reports against. */
    private static void headlines(PrintWriter out, List<CompareRun.Cell> cells, double rate) {
        out.println();
        int[] lengths = cells.stream().filter(CompareRun.Cell::ok).mapToInt(CompareRun.Cell::length).distinct().sorted().toArray();
        for (int n : lengths) {
            OptionalDouble sparse = best(cells, n, false);
            OptionalDouble dense = best(cells, n, true);
            if (sparse.isPresent() && dense.isPresent()) {
                out.printf(Locale.ROOT, "N=%,d: best sparse backend %.1f ms, fastest dense peer %.1f ms: %.1fx faster%n", n,
                        sparse.getAsDouble(), dense.getAsDouble(), dense.getAsDouble() / sparse.getAsDouble());
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
