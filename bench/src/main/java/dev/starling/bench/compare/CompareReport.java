package dev.starling.bench.compare;

import dev.starling.bench.draw.ComparePlot;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/** The table and its legend, the CSV and the log-log plot of a {@link CompareRun}. */
final class CompareReport {

    private CompareReport() {
    }

    /** The column legend printed under the table: one entry per column that needs one, continuation lines indented. */
    static final List<String> LEGEND = List.of(
            "median ms   median time of one call, after a warm-up: calls until at least "
                    + (int) CompareRun.WARMUP_MIN_SECONDS + " s and " + CompareRun.WARMUP_MIN_CALLS + " calls have passed",
            "            (whichever is longer; no more calls after " + (int) CompareRun.WARMUP_MAX_SECONDS
                    + " s), so the JIT has compiled the kernels",
            "spread      fastest-slowest call; (5) = 5 timed calls (at most --reps; fewer when calls are slow, see",
            "            --cell-seconds; never fewer than 3)",
            "GFLOP/s     useful rate, 2·(D + Dv)·pairs / time; pairs = the pattern's allowed pairs for sparse",
            "            contenders, all N·N pairs for dense ones (torch-sdpa, nd4j-dense: full attention)",
            "x fastest   time / the fastest contender's time at this length (1.00 = the fastest)",
            "peak MB     memory needed above the level just before: Java heap allocated by prepare plus, for the",
            "            calls, the smaller of the most one call allocated and the peak rise in heap occupancy (both",
            "            upper bounds of what a call holds), plus the peak growth of resident memory (RSS) less heap",
            "            growth: native buffers, pages touched (" + (NativeHeap.canTrim()
                    ? "freed memory returned to the system before the baseline; " : "freed memory kept for reuse is not seen; ")
                    + "sampled every " + MemorySampler.PERIOD_MS + " ms)",
            "skipped     a contender whose one call would take longer than --max-call-seconds (predicted from its rate",
            "            at the previous length) is not run at that length");

    /** The legend's lines for {@code --backward}. */
    static final List<String> BACKWARD_LEGEND = List.of(
            "pass        fwd = forward alone; fwd+bwd = forward then backward from a random dOut (dq, dk, dv written),",
            "            both timed in the same run; GFLOP/s of fwd+bwd counts the backward as "
                    + CompareRun.BACKWARD_WORK + "x the forward's useful",
            "            work (its five products against the forward's two), so fwd+bwd = "
                    + (1 + CompareRun.BACKWARD_WORK) + "x the forward's FLOPs",
            "            (dense peers: torch-sdpa through libtorch autograd)");

    /**
     * Prints the table, then its legend.
     *
     * @param out where it goes
     * @param cells the rows
     */
    static void table(PrintWriter out, List<CompareRun.Cell> cells) {
        boolean passes = cells.stream().anyMatch(c -> c.pass() == CompareRun.Pass.FORWARD_BACKWARD);
        String passHeader = passes ? String.format(Locale.ROOT, " %-7s", "pass") : "";
        out.printf(Locale.ROOT, "%-12s %-6s%s %9s %11s %19s %9s %10s %9s%n", "contender", "kind", passHeader, "N",
                "median ms", "spread (min-max)", "GFLOP/s", "x fastest", "peak MB");
        for (CompareRun.Cell c : cells) {
            String kind = c.dense() ? "dense" : "sparse";
            String n = c.length() == 0 ? "-" : String.format(Locale.ROOT, "%,d", c.length());
            String pass = !passes ? "" : String.format(Locale.ROOT, " %-7s", c.length() == 0 ? "-" : c.pass().label());
            if (!c.ok()) {
                out.printf(Locale.ROOT, "%-12s %-6s%s %9s  %s%n", c.contender(), kind, pass, n, c.status());
                continue;
            }
            out.printf(Locale.ROOT, "%-12s %-6s%s %9s %11.1f %19s %9.2f %10.2f %9s%n", c.contender(), kind, pass, n,
                    c.medianMs(), String.format(Locale.ROOT, "%.1f-%.1f (%d)", c.minMs(), c.maxMs(), c.reps()), c.gflops(),
                    c.relative(), megabytes(c.peakBytes()));
        }
        out.println();
        for (String line : LEGEND) {
            out.println("  " + line);
        }
        if (passes) {
            for (String line : BACKWARD_LEGEND) {
                out.println("  " + line);
            }
        }
        out.flush();
    }

    /** Megabytes with two decimals below 1 MB and one below 10 MB, so small but real numbers do not read as 0. */
    static String megabytes(long bytes) {
        double mb = bytes / 1048576.0;
        return String.format(Locale.ROOT, mb < 1 ? "%.2f" : mb < 10 ? "%.1f" : "%.0f", mb);
    }

    /**
     * Writes the table as CSV, one row per cell.
     *
     * @param out the file's stream. Not closed.
     * @param cells the rows
     * @throws IOException if writing fails
     */
    static void csv(OutputStream out, List<CompareRun.Cell> cells) throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("contender,kind,pass,length,status,median_ms,min_ms,max_ms,calls,warmup_calls,gflops,relative_to_fastest,"
                + "peak_mb\n");
        for (CompareRun.Cell c : cells) {
            sb.append(String.join(",", c.contender(), c.dense() ? "dense" : "sparse", c.pass().label(),
                    String.valueOf(c.length()), '"' + c.status().replace("\"", "'") + '"', num(c.medianMs()), num(c.minMs()),
                    num(c.maxMs()), String.valueOf(c.reps()), String.valueOf(c.warmups()), num(c.gflops()), num(c.relative()),
                    c.ok() ? num(c.peakBytes() / 1048576.0) : "")).append('\n');
        }
        out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    private static String num(double x) {
        return Double.isNaN(x) ? "" : String.format(Locale.ROOT, "%.4f", x);
    }

    /**
     * Draws time against length, one line per contender, and writes it as PNG.
     *
     * @param out the file's stream. Not closed.
     * @param cells the rows; those without numbers are left out
     * @param title the plot's title
     * @throws IOException if no contender produced a time, or writing fails
     */
    static void plot(OutputStream out, List<CompareRun.Cell> cells, String title) throws IOException {
        Map<String, ComparePlot.Series> series = new LinkedHashMap<>();
        boolean passes = cells.stream().anyMatch(c -> c.ok() && c.pass() == CompareRun.Pass.FORWARD_BACKWARD);
        for (CompareRun.Cell c : cells) {
            if (c.ok()) {
                String label = passes ? c.contender() + " " + c.pass().label() : c.contender();
                series.computeIfAbsent(label, x -> new ComparePlot.Series(label, c.dense(), new ArrayList<>(),
                        new ArrayList<>()));
                series.get(label).lengths().add(c.length());
                series.get(label).millis().add(c.medianMs());
            }
        }
        if (series.isEmpty()) {
            throw new IOException("nothing to plot: no contender produced a time");
        }
        ComparePlot.write(out, title, List.copyOf(series.values()));
    }

    /**
     * One line on the oracle check: that every contender agreed, on which case, or who did not.
     *
     * @param checks the contenders' checks
     * @param length the length checked
     * @param seed the seed of the checked inputs
     * @param config the run's configuration
     * @return the line
     */
    static String checkLine(List<CompareRun.Check> checks, int length, long seed, CompareRun.Config config) {
        String onCase = String.format(Locale.ROOT, "N=%,d, B=%d, H=%d, D=%d, seed %d (sparse backends over %s, dense peers "
                + "over all pairs; FP32 tolerance%s)", length, config.batch(), config.heads(), config.headDim(), seed,
                config.pattern().text(), config.backward() ? "; gradients dq, dk, dv against float64 too, "
                        + "within the kit's FP32 gradient tolerance" : "");
        if (checks.isEmpty()) {
            return "oracle check: no contender could run here";
        }
        List<CompareRun.Check> other = checks.stream().filter(c -> !c.agreed()).toList();
        if (other.isEmpty()) {
            return (checks.size() == 1 ? "oracle check: the one contender" : "oracle check: all " + checks.size() + " contenders")
                    + " agreed with dense float64 attention on " + onCase;
        }
        long agreed = checks.size() - other.size();
        return "oracle check: " + agreed + " of " + checks.size() + " contenders agreed with dense float64 attention on "
                + onCase + "; " + other.stream().map(c -> c.contender() + " " + c.verdict())
                .collect(Collectors.joining("; "));
    }
}
