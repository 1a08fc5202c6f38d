package dev.starling.bench.compare;

import dev.starling.api.Precision;
import dev.starling.api.selection.BackendSelector;
import dev.starling.bench.output.StagedFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.Set;
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
     * @return 0, or 1 when a contender disagreed with the oracle, or 2 when one ran out of Java heap, or 4 when
     *         no contender could be timed at any length (all unavailable, refused or skipped)
     * @throws IllegalArgumentException if {@code config} names a backend that was not found
     * @throws IOException if the CSV or the plot cannot be written
     */
    public static int run(CompareRun.Config config, PrintWriter out, Path csv, Path plot, boolean machineRate)
            throws IOException {
        long start = System.nanoTime();
        CompareRun run = new CompareRun(config, BackendSelector.discover().reports(),
                new Progress(System.err, System.console() != null));
        boolean several = config.precisions().size() > 1 || config.precisions().get(0) != Precision.FP32;
        out.printf(Locale.ROOT, "starling compare: %s, batch %d, %d heads, head dim %d; lengths %s%s%n",
                config.pattern().text(), config.batch(), config.heads(), config.headDim(),
                java.util.Arrays.stream(config.lengths()).mapToObj(n -> String.format(Locale.ROOT, "%,d", n))
                        .collect(Collectors.joining(", ")), several ? "; precisions " + config.precisions().stream()
                        .map(p -> CompareRun.label(p).strip()).collect(Collectors.joining(", ")) : "");
        out.println("each contender is checked against dense float64 attention on the smallest length (at most "
                + String.format(Locale.ROOT, "%,d", CompareRun.MAX_CHECK_LENGTH) + " tokens) first, then timed"
                + (config.backward() ? "; --backward: forward alone and forward + backward, each contender that has a "
                + "backward pass" : ""));
        out.flush();
        // The machine's rate is measured before and after the contenders and the faster kept: other load only
        // slows a product, and a rate measured under load alone would make a contender look faster than the machine.
        Set<Precision> precisions = EnumSet.copyOf(config.precisions());
        List<MachineRate.Rate> before = machineRate ? MachineRate.measure(2048, 5, precisions) : List.of();
        CompareRun.Outcome outcome = run.run(out);
        out.println();
        CompareReport.table(out, outcome.cells());
        Set<Precision> torchTimed = outcome.cells().stream().filter(c -> c.ok() && c.contender().equals("torch-sdpa"))
                .map(CompareRun.Cell::precision).collect(Collectors.toCollection(() -> EnumSet.noneOf(Precision.class)));
        if (!torchTimed.isEmpty()) {
            out.println();
            TorchSdpaPeer.versusStock(torchTimed).forEach(out::println);
        }
        Map<Precision, MachineRate.Rate> rates = new EnumMap<>(Precision.class);
        if (machineRate) {
            List<MachineRate.Rate> measured = MachineRate.faster(before, MachineRate.measure(2048, 5, precisions));
            for (Precision precision : precisions) {
                out.println();
                out.println("machine: " + (precision == Precision.FP32 ? "single-precision" : "bf16 (bf16 inputs, float32 "
                        + "accumulation)") + " matrix product, 2048 x 2048 x 2048, fastest of 5 before and 5 after "
                        + "the contenders; the faster library is the machine's " + (several ? CompareRun.label(precision)
                        .strip() + " " : "") + "rate");
                for (MachineRate.Rate r : measured) {
                    if (r.precision() != precision) {
                        continue;
                    }
                    out.printf(Locale.ROOT, "  %-22s %8.1f GFLOP/s  %s%n", r.library(), r.gflops(), r.note());
                    MachineRate.Rate best = rates.get(precision);
                    if (!Double.isNaN(r.gflops()) && (best == null || r.gflops() > best.gflops())) {
                        rates.put(precision, r);
                    }
                }
            }
            String slower = MachineRate.slowerBf16(rates);
            if (slower != null) {
                out.println("  " + slower);
            }
        }
        headlines(out, outcome.cells(), rates, several);
        write(out, outcome.cells(), config, csv, plot);
        boolean wrong = outcome.checks().stream().anyMatch(CompareRun.Check::wrong);
        boolean memory = outcome.cells().stream().anyMatch(c -> c.status().startsWith(CompareRun.OUT_OF_MEMORY));
        boolean nothing = outcome.cells().stream().noneMatch(CompareRun.Cell::ok);
        out.printf(Locale.ROOT, "done in %s%s%s%s%n", duration(System.nanoTime() - start),
                wrong ? "; a contender disagreed with the oracle (exit 1)" : "",
                memory && !wrong ? "; a contender ran out of Java heap: give the JVM more with STARLING_JAVA_OPTS=-Xmx<size> "
                        + "(exit 2)" : "",
                nothing && !wrong && !memory ? "; nothing was timed: no contender could run here (exit 4; the table says why)"
                        : "");
        out.flush();
        return wrong ? 1 : memory ? 2 : nothing ? 4 : 0;
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

    /**
     * The figures the benchmarks page reports against, each within one precision: sparse against dense,
     * growth with length and the share of the machine's rate in that precision.
     *
     * @param out where they go
     * @param cells the run's cells
     * @param rates the machine's rate per precision (none without {@code --machine-rate})
     * @param named whether to name the precision in each line (a run not in float32 alone)
     */
    static void headlines(PrintWriter out, List<CompareRun.Cell> cells, Map<Precision, MachineRate.Rate> rates,
                          boolean named) {
        out.println();
        boolean backward = cells.stream().anyMatch(c -> c.ok() && c.pass() == CompareRun.Pass.FORWARD_BACKWARD);
        for (Precision precision : Precision.values()) {
            List<CompareRun.Cell> in = cells.stream().filter(c -> c.precision() == precision).toList();
            String prec = named ? CompareRun.label(precision) : "";
            int[] lengths = in.stream().filter(CompareRun.Cell::ok).mapToInt(CompareRun.Cell::length).distinct().sorted()
                    .toArray();
            for (CompareRun.Pass pass : CompareRun.Pass.values()) {
                String what = prec + (backward ? " " + pass.label() : "");
                for (int n : lengths) {
                    OptionalDouble sparse = best(in, n, false, pass);
                    OptionalDouble dense = best(in, n, true, pass);
                    if (sparse.isPresent() && dense.isPresent()) {
                        out.printf(Locale.ROOT, "N=%,d%s: best sparse backend %.1f ms, fastest dense peer %.1f ms: sparse is "
                                + "%s%n", n, what, sparse.getAsDouble(), dense.getAsDouble(),
                                speed(sparse.getAsDouble(), dense.getAsDouble()));
                    }
                }
            }
            if (lengths.length >= 2) {
                int a = lengths[lengths.length - 2];
                int b = lengths[lengths.length - 1];
                OptionalDouble ta = best(in, a, false, CompareRun.Pass.FORWARD);
                OptionalDouble tb = best(in, b, false, CompareRun.Pass.FORWARD);
                if (ta.isPresent() && tb.isPresent()) {
                    out.printf(Locale.ROOT, "best sparse backend%s from N=%,d to N=%,d (%.0fx the tokens): time grows %.2fx%n",
                            prec, a, b, (double) b / a, tb.getAsDouble() / ta.getAsDouble());
                }
            }
            if (backward) {
                for (String line : backwardRatios(in)) {
                    out.println(line);
                }
            }
            MachineRate.Rate rate = rates.get(precision);
            if (rate != null) {
                in.stream().filter(c -> c.ok() && !c.dense() && c.pass() == CompareRun.Pass.FORWARD)
                        .mapToDouble(CompareRun.Cell::gflops).max().ifPresent(g -> out.println(shareLine(g, rate, named)));
            }
        }
    }

    /**
     * Per contender and length timed both ways, the cost of a training step over the forward alone:
     * {@code "vector N=16,384: fwd+bwd / fwd = 3.1x"}; cells of one precision. The target (issue 15) is at most
     * {@code 1 + BACKWARD_WORK} for the fastest CPU backend at 16,384 tokens.
     *
     * @param cells the run's cells
     * @return one line per pair, sparse contenders first
     */
    static List<String> backwardRatios(List<CompareRun.Cell> cells) {
        List<String> lines = new java.util.ArrayList<>();
        for (boolean dense : new boolean[] {false, true}) {
            for (CompareRun.Cell f : cells) {
                if (!f.ok() || f.dense() != dense || f.pass() != CompareRun.Pass.FORWARD) {
                    continue;
                }
                cells.stream().filter(b -> b.ok() && b.pass() == CompareRun.Pass.FORWARD_BACKWARD
                                && b.contender().equals(f.contender()) && b.length() == f.length()).findFirst()
                        .ifPresent(b -> lines.add(String.format(Locale.ROOT, "%s N=%,d: fwd+bwd / fwd = %.2fx (%s; a backward "
                                + "doing %.1fx the forward's work at the same rate gives %.1fx)", f.contender(), f.length(),
                                b.medianMs() / f.medianMs(), dense ? "dense peer" : "sparse", CompareRun.BACKWARD_WORK,
                                1 + CompareRun.BACKWARD_WORK)));
            }
        }
        return lines;
    }

    private static OptionalDouble best(List<CompareRun.Cell> cells, int n, boolean dense, CompareRun.Pass pass) {
        return cells.stream().filter(c -> c.ok() && c.length() == n && c.dense() == dense && c.pass() == pass)
                .mapToDouble(CompareRun.Cell::medianMs).min();
    }

    /**
     * The best sparse rate as a share of the machine's in the same precision, never above 100%: a larger
     * share means the machine rate was measured while other work slowed it, and the line says so instead
     * of printing it.
     *
     * @param gflops best sparse useful GFLOP/s in {@code rate}'s precision
     * @param rate the machine's rate in that precision
     * @param named whether to name the precision ({@code "best sparse bf16 useful rate ..."})
     * @return the headline line
     */
    static String shareLine(double gflops, MachineRate.Rate rate, boolean named) {
        String prec = named ? CompareRun.label(rate.precision()) : "";
        double share = 100 * gflops / rate.gflops();
        if (share > 100) {
            return String.format(Locale.ROOT, "best sparse%s useful rate %.1f GFLOP/s is above the machine's measured%s %.1f"
                    + " GFLOP/s (%s): other load slowed the matrix products, so no share is given; rerun on an idle"
                    + " machine", prec, gflops, prec, rate.gflops(), rate.library());
        }
        return String.format(Locale.ROOT, "best sparse%s useful rate %.1f GFLOP/s = %.0f%% of the machine's%s %.1f GFLOP/s (%s)",
                prec, gflops, share, prec, rate.gflops(), rate.library());
    }
}
