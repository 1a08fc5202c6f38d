package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * One {@code starling compare} run: every available backend on the sparse problem and the dense
 * peers on the same shapes, length by length; each first checked against the float64 dense oracle
 * ({@link DenseOracle}) on the smallest length (at most {@value #MAX_CHECK_LENGTH} tokens), then timed
 * (median of several calls after a warm-up) with its peak memory.
 */
public final class CompareRun {

    /**
     * What to compare.
     *
     * @param pattern the sparse pattern
     * @param batch {@code B}
     * @param heads {@code H}
     * @param headDim {@code D = Dv}
     * @param lengths sequence lengths, ascending
     * @param backends backend names to include (empty: all)
     * @param peers whether to add the dense peers
     * @param reps most timed calls per cell
     * @param cellSeconds time budget per cell: slow cells get fewer calls, never fewer than 3
     * @param denseBudgetBytes memory the dense peers may use for one head's scores
     */
    public record Config(PatternSpec pattern, int batch, int heads, int headDim, int[] lengths, List<String> backends,
                         boolean peers, int reps, double cellSeconds, long denseBudgetBytes) {
    }

    /**
     * One contender at one length.
     *
     * @param contender name
     * @param dense whether it computes full attention
     * @param length {@code N} (0 for a row about the contender as a whole)
     * @param status {@code ok}, or why there is no number
     * @param medianMs median time of one call
     * @param minMs fastest call
     * @param maxMs slowest call
     * @param reps timed calls
     * @param gflops useful GFLOP/s, {@code 2·(D + Dv)·P / time}
     * @param relative time over the fastest contender's at this length
     * @param peakBytes memory the contender needed at this length above the level just before it: Java
     *                  heap allocated by prepare plus the most by one call, plus the peak growth of native
     *                  memory in use ({@link MemorySampler})
     */
    public record Cell(String contender, boolean dense, int length, String status, double medianMs, double minMs,
                       double maxMs, int reps, double gflops, double relative, long peakBytes) {
        /** @return whether the cell has numbers (status {@code ok}) */
        boolean ok() {
            return status.equals("ok");
        }
    }

    /**
     * How one contender fared against the float64 oracle before it was timed.
     *
     * @param contender name
     * @param dense whether it computes full attention (checked against the oracle over all pairs)
     * @param verdict {@link #AGREED}, or why it was not checked, or (starting with {@code WRONG}) how it disagreed
     */
    public record Check(String contender, boolean dense, String verdict) {
        /** The verdict of a contender whose output matched the oracle within the FP32 tolerance. */
        public static final String AGREED = "agreed";

        /** @return whether it agreed with the oracle */
        public boolean agreed() {
            return verdict.equals(AGREED);
        }

        /** @return whether it disagreed (and was not timed) */
        public boolean wrong() {
            return verdict.startsWith("WRONG");
        }
    }

    /**
     * Everything one run measured.
     *
     * @param cells the table's rows, contender by contender in length order
     * @param checks the oracle check (on the smallest length, at most {@value #MAX_CHECK_LENGTH}) of every
     *               contender that could run here, in the order checked
     */
    public record Outcome(List<Cell> cells, List<Check> checks) {
    }

    /** Seed of the random inputs of the oracle check (the timed inputs are seeded with their length). */
    static final long CHECK_SEED = 7;
    /**
     * Longest length the oracle check runs on: the float64 oracle is dense and quadratic, so checking
     * at 65,536 tokens alone would take longer than the whole comparison.
     */
    static final int MAX_CHECK_LENGTH = 2048;

    private final Config config;
    private final List<BackendReport> reports;
    private final Progress progress;

    /**
     * @param config what to compare
     * @param reports the backends found ({@link BackendSelector#reports()})
     * @param progress where progress is drawn
     * @throws IllegalArgumentException if {@link Config#backends()} names a backend not among {@code reports}
     */
    CompareRun(Config config, List<BackendReport> reports, Progress progress) {
        requireKnown(config.backends(), reports.stream().map(BackendReport::name).toList());
        this.config = config;
        this.reports = reports;
        this.progress = progress;
    }

    /**
     * Refuses backend names that were not found: a typo must not silently compare nothing.
     *
     * @param wanted names given to {@code --backends}
     * @param found names of the backends on the class path
     * @throws IllegalArgumentException naming the unknown names and listing the ones found
     */
    static void requireKnown(List<String> wanted, List<String> found) {
        List<String> unknown = wanted.stream().filter(w -> !found.contains(w)).toList();
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("--backends: no backend named " + unknown.stream().map(u -> "'" + u + "'")
                    .collect(java.util.stream.Collectors.joining(", ")) + "; found: " + String.join(", ", found)
                    + (namesAPeer(unknown) ? " (the dense peers torch-dense and nd4j-dense are not backends: "
                    + "they run unless --no-peers)" : ""));
        }
    }

    /** Whether one of the unknown names looks like a dense peer, which {@code --backends} does not select. */
    private static boolean namesAPeer(List<String> unknown) {
        return unknown.stream().anyMatch(u -> u.endsWith("-dense"));
    }

    /** @return the cells (relative times filled in) and the oracle checks */
    Outcome run(PrintWriter log) {
        List<Cell> cells = new ArrayList<>();
        List<Check> checks = new ArrayList<>();
        List<Contender> contenders = new ArrayList<>();
        for (BackendReport r : reports) {
            if (!config.backends().isEmpty() && !config.backends().contains(r.name())) {
                continue;
            }
            if (r.backend() == null || !r.availability().isAvailable()) {
                cells.add(noNumber(r.name(), false, 0, "unavailable: " + r.availability().reason()));
                continue;
            }
            contenders.add(new BackendContender(r.backend(), config.pattern()));
        }
        if (config.peers()) {
            for (Contender peer : new Contender[] {new DenseTorchPeer(config.denseBudgetBytes()),
                new DenseNd4jPeer(config.denseBudgetBytes())}) {
                String why = peer.unavailableReason();
                if (why != null) {
                    cells.add(noNumber(peer.name(), true, 0, "unavailable: " + why));
                } else {
                    contenders.add(peer);
                }
            }
        }
        contenders.removeIf(c -> {
            String verdict = check(c);
            checks.add(new Check(c.name(), c.dense(), verdict));
            if (verdict.startsWith("WRONG")) {
                cells.add(noNumber(c.name(), c.dense(), checkLength(), verdict + ", not timed"));
                log.println("starling compare: " + c.name() + " disagrees with the float64 oracle: " + verdict);
                return true;
            }
            return false;
        });
        log.println(CompareReport.checkLine(checks, checkLength(), CHECK_SEED, config));
        log.flush();
        progress.start(contenders.size() * config.lengths().length);
        for (int n : config.lengths()) {
            AttentionProblem problem = problem(n);
            Random random = new Random(n);
            Tensor q = random(random, n);
            Tensor k = random(random, n);
            Tensor v = random(random, n);
            Tensor out = Tensor.zeros(TensorLayout.BHSD, config.batch(), config.heads(), n, config.headDim());
            for (Contender c : contenders) {
                progress.step(c.name() + " N=" + n);
                cells.add(time(c, problem, q, k, v, out));
            }
        }
        for (Contender c : contenders) {
            c.close();
        }
        progress.done();
        return new Outcome(withRelative(cells), List.copyOf(checks));
    }

    private AttentionProblem problem(int n) {
        return AttentionProblem.builder().batch(config.batch()).heads(config.heads()).length(n)
                .headDim(config.headDim()).build();
    }

    private Tensor random(Random random, int n) {
        float[] d = new float[config.batch() * config.heads() * n * config.headDim()];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) random.nextGaussian();
        }
        return Tensor.bhsd(d, config.batch(), config.heads(), n, config.headDim());
    }

    /** @return the length the oracle check runs on: the smallest length, at most {@link #MAX_CHECK_LENGTH} */
    private int checkLength() {
        return Math.min(config.lengths()[0], MAX_CHECK_LENGTH);
    }

    /**
     * Checks a contender against the float64 oracle on {@link #checkLength()}: sparse backends over the
     * pattern, dense peers over every pair.
     *
     * @return {@link Check#AGREED}, {@code "not checked: why"}, or {@code "WRONG: what"}
     */
    private String check(Contender c) {
        int n = checkLength();
        AttentionProblem p = problem(n);
        Random random = new Random(CHECK_SEED);
        Tensor q = random(random, n);
        Tensor k = random(random, n);
        Tensor v = random(random, n);
        PatternSpec pattern = c.dense() ? Patterns.parse("dense(block=" + config.pattern().blockSize() + ")")
                : config.pattern();
        BlockLayout layout = Starling.layout(p, pattern);
        Tensor out = Tensor.zeros(TensorLayout.BHSD, config.batch(), config.heads(), n, config.headDim());
        String refused = c.refuses(p);
        if (refused != null) {
            return "not checked: " + refused;
        }
        try {
            c.prepare(p, q, k, v);
            c.run(out);
        } catch (RuntimeException e) {
            return "WRONG: threw " + e;
        } finally {
            c.close();
        }
        Comparison.Outcome o = Comparison.compare(p, DenseOracle.compute(p, layout, q, k, v), out, null, Tolerance.FP32);
        return o.ok() ? Check.AGREED : "WRONG: " + o.message();
    }

    private Cell time(Contender c, AttentionProblem p, Tensor q, Tensor k, Tensor v, Tensor out) {
        String refused = c.refuses(p);
        if (refused != null) {
            return noNumber(c.name(), c.dense(), p.queryLength(), refused);
        }
        try (MemorySampler memory = new MemorySampler()) {
            c.prepare(p, q, k, v);
            memory.prepared();
            memory.beforeCall();
            long t0 = System.nanoTime();
            c.run(out);   // warm-up
            double warmMs = (System.nanoTime() - t0) / 1e6;
            memory.afterCall();
            int reps = (int) Math.max(3, Math.min(config.reps(), Math.floor(config.cellSeconds() * 1000 / warmMs)));
            double[] ms = new double[reps];
            for (int r = 0; r < reps; r++) {
                progress.detail("call " + (r + 1) + "/" + reps);
                memory.beforeCall();
                long t = System.nanoTime();
                c.run(out);
                ms[r] = (System.nanoTime() - t) / 1e6;
                memory.afterCall();
            }
            c.close();
            Arrays.sort(ms);
            double median = reps % 2 == 1 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
            double flops = TokenMask.usefulFlops(p, pairs(c, p));
            return new Cell(c.name(), c.dense(), p.queryLength(), "ok", median, ms[0], ms[reps - 1], reps,
                    flops / median / 1e6, Double.NaN, memory.peakAboveBaseline());
        } catch (RuntimeException | OutOfMemoryError e) {
            c.close();
            return noNumber(c.name(), c.dense(), p.queryLength(), "failed: " + e);
        }
    }

    private long pairs(Contender c, AttentionProblem p) {
        if (c.dense()) {
            return (long) p.batch() * p.queryHeads() * p.queryLength() * p.keyLength();
        }
        return TokenMask.of(p, Starling.layout(p, config.pattern())).allowedPairs();
    }

    private static Cell noNumber(String name, boolean dense, int length, String status) {
        return new Cell(name, dense, length, status, Double.NaN, Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN, 0);
    }

    private static List<Cell> withRelative(List<Cell> cells) {
        List<Cell> out = new ArrayList<>();
        for (Cell c : cells) {
            double best = cells.stream().filter(x -> x.ok() && x.length() == c.length()).mapToDouble(Cell::medianMs)
                    .min().orElse(Double.NaN);
            out.add(c.ok() ? new Cell(c.contender(), c.dense(), c.length(), c.status(), c.medianMs(), c.minMs(), c.maxMs(),
                    c.reps(), c.gflops(), c.medianMs() / best, c.peakBytes()) : c);
        }
        return out;
    }
}
