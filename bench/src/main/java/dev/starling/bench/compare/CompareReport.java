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

    /** The legend's line for {@code --precision} with more than one precision. */
    static final List<String> PRECISION_LEGEND = List.of(
            "precision   fp32 = float32 inputs and arithmetic; bf16 = the same random inputs rounded to bfloat16",
            "            (to nearest, ties to even), bf16 products with float32 accumulation, checked against float64",
            "            within the kit's bf16 tolerance row; a contender without bf16 is listed, not timed, in it;",
            "            x fastest is over every precision at the length; the headlines compare within one precision");

    /**
     * Prints the table, then its legend. A pass column appears when a cell timed forward + backward, a
     * precision column when the cells are in more than one precision.
     *
     * @param out where it goes
     * @param cells the rows
     */
    static void table(PrintWriter out, List<CompareRun.Cell> cells) {
        boolean passes = cells.stream().anyMatch(c -> c.pass() == CompareRun.Pass.FORWARD_BACKWARD);
        boolean precisions = severalPrecisions(cells);
        String passHeader = passes ? String.format(Locale.ROOT, " %-7s", "pass") : "";
        String precisionHeader = precisions ? String.format(Locale.ROOT, " %-4s", "prec") : "";
        out.printf(Locale.ROOT, "%-12s %-6s%s%s %9s %11s %19s %9s %10s %9s%n", "contender", "kind", passHeader,
                precisionHeader, "N", "median ms", "spread (min-max)", "GFLOP/s", "x fastest", "peak MB");
        for (CompareRun.Cell c : cells) {
            String kind = c.dense() ? "dense" : "sparse";
            String n = c.length() == 0 ? "-" : String.format(Locale.ROOT, "%,d", c.length());
            String pass = !passes ? "" : String.format(Locale.ROOT, " %-7s", c.length() == 0 ? "-" : c.pass().label());
            pass += !precisions ? "" : String.format(Locale.ROOT, " %-4s", CompareRun.label(c.precision()).strip());
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
        if (precisions) {
            for (String line : PRECISION_LEGEND) {
                out.println("  " + line);
            }
        }
        out.flush();
    }

    /**
     * @param cells a run's cells
     * @return whether they are in more than one precision (the report then names each row's)
     */
    static boolean severalPrecisions(List<CompareRun.Cell> cells) {
        return cells.stream().map(CompareRun.Cell::precision).distinct().count() > 1;
    }

    /** Megabytes with two decimals below 1 MB and one below 10 MB, so small but real numbers do not read as 0. */
    static String megabytes(long bytes) {
        double mb = bytes / 1048576.0;
        return String.format(Locale.ROOT, mb < 1 ? "%.2f" : mb < 10 ? "%.1f" : "%.0f", mb);
    }

    /**
     * Writes the table as CSV, one row per cell, with its pass and precision whatever the run timed.
     *
     * @param out the file's stream. Not closed.
     * @param cells the rows
     * @throws IOException if writing fails
     */
    static void csv(OutputStream out, List<CompareRun.Cell> cells) throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("contender,kind,pass,precision,length,status,median_ms,min_ms,max_ms,calls,warmup_calls,gflops,relative_to_fastest,"
                + "peak_mb\n");
        for (CompareRun.Cell c : cells) {
            sb.append(String.join(",", c.contender(), c.dense() ? "dense" : "sparse", c.pass().label(),
                    CompareRun.label(c.precision()).strip(), String.valueOf(c.length()),
                    '"' + c.status().replace("\"", "'") + '"', num(c.medianMs()), num(c.minMs()),
                    num(c.maxMs()), String.valueOf(c.reps()), String.valueOf(c.warmups()), num(c.gflops()), num(c.relative()),
                    c.ok() ? num(c.peakBytes() / 1048576.0) : "")).append('\n');
        }
        out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    private static String num(double x) {
        return Double.isNaN(x) ? "" : String.format(Locale.ROOT, "%.4f", x);
    }

    /**
     * Draws time against length, one line per contender (per contender and precision when the cells are in
     * several, e.g. {@code native bf16}), and writes it as PNG.
     *
     * @param out the file's stream. Not closed.
     * @param cells the rows; those without numbers are left out
     * @param title the plot's title
     * @throws IOException if no contender produced a time, or writing fails
     */
    static void plot(OutputStream out, List<CompareRun.Cell> cells, String title) throws IOException {
        Map<String, ComparePlot.Series> series = new LinkedHashMap<>();
        boolean passes = cells.stream().anyMatch(c -> c.ok() && c.pass() == CompareRun.Pass.FORWARD_BACKWARD);
        boolean precisions = severalPrecisions(cells.stream().filter(CompareRun.Cell::ok).toList());
        for (CompareRun.Cell c : cells) {
            if (c.ok()) {
                String label = c.contender() + (precisions ? CompareRun.label(c.precision()) : "")
                        + (passes ? " " + c.pass().label() : "");
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
        String rows = config.precisions().stream().map(p -> CompareRun.label(p).strip().toUpperCase(Locale.ROOT))
                .collect(Collectors.joining(" and "));
        boolean several = config.precisions().size() > 1;
        String onCase = String.format(Locale.ROOT, "N=%,d, B=%d, H=%d, D=%d, seed %d (sparse backends over %s, dense peers "
                + "over all pairs; %s tolerance%s%s)", length, config.batch(), config.heads(), config.headDim(), seed,
                config.pattern().text(), rows, several ? ", each precision's row, inputs rounded to it" : "",
                config.backward() ? "; gradients dq, dk, dv against float64 too, within the kit's " + rows
                        + " gradient tolerance" : "");
        if (checks.isEmpty()) {
            return "oracle check: no contender could run here";
        }
        List<CompareRun.Check> other = checks.stream().filter(c -> !c.agreed()).toList();
        String what = several ? " contenders and precisions" : " contenders";
        if (other.isEmpty()) {
            return (checks.size() == 1 ? "oracle check: the one contender" : "oracle check: all " + checks.size() + what)
                    + " agreed with dense float64 attention on " + onCase;
        }
        long agreed = checks.size() - other.size();
        return "oracle check: " + agreed + " of " + checks.size() + what + " agreed with dense float64 attention on "
                + onCase + "; " + other.stream().map(c -> c.contender() + (several ? CompareRun.label(c.precision()) : "")
                + " " + c.verdict()).collect(Collectors.joining("; "));
    }
}
