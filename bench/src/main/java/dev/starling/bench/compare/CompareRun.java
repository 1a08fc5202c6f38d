package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;
import dev.starling.api.ElementType;
import dev.starling.api.Precision;
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
import dev.starling.conformance.GradientComparison;
import dev.starling.conformance.GradientOracle;
import dev.starling.conformance.Tolerance;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * One {@code starling compare} run: every available backend on the sparse problem and the dense
 * peers on the same shapes, length by length; each first checked against the float64 dense oracle
 * ({@link DenseOracle}; with {@code --backward} its gradients too, against {@link GradientOracle}) on the
 * smallest length (at most {@value #MAX_CHECK_LENGTH} tokens), then timed (median of several calls after
 * a timed warm-up) with its peak memory.
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
     * @param backward whether to time forward + backward as well as the forward alone
     * @param maxCallSeconds a contender whose one call is predicted to take longer is skipped at that length
     * @param precisions the precisions to time each contender in, in {@link Precision} order, each once, each one
     *                   of {@link CompareRun#PRECISIONS}; a contender lacking one is listed, not timed, in it
     */
    public record Config(PatternSpec pattern, int batch, int heads, int headDim, int[] lengths, List<String> backends,
                         boolean peers, int reps, double cellSeconds, long denseBudgetBytes, boolean backward,
                         double maxCallSeconds, List<Precision> precisions) {
        /**
         * @throws IllegalArgumentException if {@code precisions} is empty, repeats one, is out of
         *                                  {@link Precision} order or names one {@code compare} does not time
         */
        public Config {
            precisions = List.copyOf(precisions);
            if (precisions.isEmpty() || !PRECISIONS.containsAll(precisions)
                    || !precisions.equals(precisions.stream().distinct().sorted().toList())) {
                throw new IllegalArgumentException("precisions must be distinct, in order, from " + PRECISIONS + ", got "
                        + precisions);
            }
        }

        /**
         * In {@link Precision#FP32} alone.
         *
         * @see #Config(PatternSpec, int, int, int, int[], List, boolean, int, double, long, boolean, double, List)
         */
        public Config(PatternSpec pattern, int batch, int heads, int headDim, int[] lengths, List<String> backends,
                      boolean peers, int reps, double cellSeconds, long denseBudgetBytes, boolean backward,
                      double maxCallSeconds) {
            this(pattern, batch, heads, headDim, lengths, backends, peers, reps, cellSeconds, denseBudgetBytes, backward,
                    maxCallSeconds, List.of(Precision.FP32));
        }

        /**
         * The forward alone in {@link Precision#FP32}, calls of up to {@value CompareRun#DEFAULT_MAX_CALL_SECONDS} s.
         *
         * @see #Config(PatternSpec, int, int, int, int[], List, boolean, int, double, long, boolean, double)
         */
        public Config(PatternSpec pattern, int batch, int heads, int headDim, int[] lengths, List<String> backends,
                      boolean peers, int reps, double cellSeconds, long denseBudgetBytes) {
            this(pattern, batch, heads, headDim, lengths, backends, peers, reps, cellSeconds, denseBudgetBytes, false,
                    DEFAULT_MAX_CALL_SECONDS);
        }
    }

    /** What a cell timed. */
    public enum Pass {
        /** {@code forward} alone. */
        FORWARD("fwd", 1.0),
        /** {@code forward} then {@code backward}: one training step of attention. */
        FORWARD_BACKWARD("fwd+bwd", 1.0 + BACKWARD_WORK);

        private final String label;
        private final double work;

        Pass(String label, double work) {
            this.label = label;
            this.work = work;
        }

        /** @return {@code fwd} or {@code fwd+bwd} */
        public String label() {
            return label;
        }

        /** @return the useful work of this pass in units of the forward's useful work */
        public double work() {
            return work;
        }
    }

    /**
     * The precisions {@code compare} times in: float32, and bfloat16 (inputs rounded to bf16 with
     * {@link ElementType#round}, the contender's bf16 arithmetic, checked within the kit's
     * {@link Tolerance#BF16} row).
     */
    public static final java.util.Set<Precision> PRECISIONS = java.util.Collections.unmodifiableSet(
            java.util.EnumSet.of(Precision.FP32, Precision.BF16));

    /**
     * Useful work of the backward pass in units of the forward's: it does five products of the
     * forward's size where the forward does two ({@code S = Q·Kᵀ} again, {@code dV = Pᵀ·dO},
     * {@code dP = dO·Vᵀ}, {@code dQ = dS·K}, {@code dK = dSᵀ·Q}), the convention FlashAttention's
     * benchmarks use. So forward + backward counts 3.5× the forward.
     */
    public static final double BACKWARD_WORK = 2.5;

    /**
     * One contender at one length.
     *
     * @param contender name
     * @param dense whether it computes full attention
     * @param pass what was timed
     * @param precision the arithmetic it was timed in (inputs rounded to it)
     * @param length {@code N} (0 for a row about the contender as a whole)
     * @param status {@code ok}, or why there is no number
     * @param medianMs median time of one call
     * @param minMs fastest call
     * @param maxMs slowest call
     * @param reps timed calls
     * @param warmups untimed warm-up calls before them
     * @param gflops useful GFLOP/s, {@code 2·(D + Dv)·P / time}, times {@link Pass#work()}
     * @param relative time over the fastest contender's at this length
     * @param peakBytes memory the contender needed at this length above the level just before it: Java
     *                  heap allocated by prepare plus the most by one call, plus the peak growth of native
     *                  memory in use ({@link MemorySampler})
     */
    public record Cell(String contender, boolean dense, Pass pass, Precision precision, int length, String status,
                       double medianMs,
                       double minMs, double maxMs, int reps, int warmups, double gflops, double relative, long peakBytes) {
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
     * @param precision the precision it was checked in, within that precision's tolerance row
     * @param verdict {@link #AGREED}, or why it was not checked, or (starting with {@code WRONG}) how it
     *                disagreed; with {@code --backward}, gradients included
     */
    public record Check(String contender, boolean dense, Precision precision, String verdict) {
        /** The verdict of a contender whose output (and gradients, when asked) matched the oracle. */
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
    /** Default of {@code --max-call-seconds}: past a minute a call, a cell takes minutes. */
    public static final double DEFAULT_MAX_CALL_SECONDS = 60;
    /** Warm-up: calls until at least this long has passed ... */
    static final double WARMUP_MIN_SECONDS = 1.0;
    /** ... and at least this many calls were made ... */
    static final int WARMUP_MIN_CALLS = 3;
    /** ... but no more calls once this long has passed (a huge cell warms up with one or two calls). */
    static final double WARMUP_MAX_SECONDS = 10.0;
    /**
     * A dense peer's one call at a length none shorter was timed at is predicted at this rate: no CPU
     * here does dense attention faster, so a prediction over the budget means skip.
     */
    static final double DENSE_RATE_CEILING_GFLOPS = 1000;
    /** The status of a cell whose contender ran out of Java heap. */
    static final String OUT_OF_MEMORY = "failed: out of memory";

    private final Config config;
    private final List<BackendReport> reports;
    private final Progress progress;

    /**
     * @param config what to compare
     * @param reports the backends found ({@link BackendSelector#reports()})
     * @param progress where progress is drawn
     * @throws IllegalArgumentException if {@link Config#backends()} names a backend not among {@code reports}
     * @throws NotEnoughMemoryException if the longest length's inputs cannot fit the Java heap
     */
    CompareRun(Config config, List<BackendReport> reports, Progress progress) {
        requireKnown(config.backends(), reports.stream().map(BackendReport::name).toList());
        requireHeap(config, Runtime.getRuntime().maxMemory());
        requireLayouts(config);
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
                    + (namesAPeer(unknown) ? " (the dense peers torch-sdpa and nd4j-dense are not backends: "
                    + "they run unless --no-peers)" : ""));
        }
    }

    /** Whether one of the unknown names looks like a dense peer, which {@code --backends} does not select. */
    private static boolean namesAPeer(List<String> unknown) {
        return unknown.stream().anyMatch(u -> u.endsWith("-dense") || u.startsWith("torch"));
    }

    /**
     * @return the cells (relative times filled in) and the oracle checks
     * @throws NotEnoughMemoryException when the inputs of a length do not fit the Java heap after all
     */
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
            for (Contender peer : new Contender[] {new TorchSdpaPeer(), new DenseNd4jPeer(config.denseBudgetBytes())}) {
                String why = peer.unavailableReason();
                if (why != null) {
                    cells.add(noNumber(peer.name(), true, 0, "unavailable: " + why));
                } else {
                    contenders.add(peer);
                }
            }
        }
        if (config.backward()) {
            contenders.removeIf(c -> {
                String why = c.noBackward();
                if (why != null) {
                    cells.add(noNumber(c.name(), c.dense(), 0, "skipped: no backward: " + why));
                }
                return why != null;
            });
        }
        // Per precision, the contenders timed in it: those declaring it, checked against the oracle in it.
        Map<Precision, List<Contender>> timed = new java.util.EnumMap<>(Precision.class);
        for (Precision precision : config.precisions()) {
            List<Contender> in = new ArrayList<>();
            for (Contender c : contenders) {
                String lacks = lacks(c, precision);
                if (lacks != null) {
                    cells.add(noNumber(c.name(), c.dense(), Pass.FORWARD, precision, 0, lacks));
                } else {
                    in.add(c);
                }
            }
            Map<Boolean, DenseOracle.Result> outputs = new HashMap<>();
            Map<Boolean, GradientOracle.Result> gradients = new HashMap<>();
            in.removeIf(c -> {
                String verdict = check(c, precision, outputs, gradients);
                checks.add(new Check(c.name(), c.dense(), precision, verdict));
                if (verdict.startsWith("WRONG")) {
                    cells.add(noNumber(c.name(), c.dense(), Pass.FORWARD, precision, checkLength(), verdict + ", not timed"));
                    log.println("starling compare: " + c.name() + named(precision) + " disagrees with the float64 oracle: "
                            + verdict);
                    return true;
                }
                return false;
            });
            timed.put(precision, in);
        }
        log.println(CompareReport.checkLine(checks, checkLength(), CHECK_SEED, config));
        log.flush();
        List<Pass> passes = config.backward() ? List.of(Pass.FORWARD, Pass.FORWARD_BACKWARD) : List.of(Pass.FORWARD);
        progress.start(timed.values().stream().mapToInt(List::size).sum() * config.lengths().length * passes.size());
        Map<String, Cell> last = new HashMap<>();
        Inputs in = null;
        for (int n : config.lengths()) {
            for (Precision precision : config.precisions()) {
                in = null;   // the previous inputs are garbage before these are allocated
                in = inputs(n, precision);
                for (Contender c : timed.get(precision)) {
                    for (Pass pass : passes) {
                        progress.step(c.name() + named(precision) + " " + (config.backward() ? pass.label() + " " : "")
                                + "N=" + n);
                        String key = c.name() + " " + pass + " " + precision;
                        Cell cell = time(c, pass, in, last.get(key));
                        if (cell.ok()) {
                            last.put(key, cell);
                        }
                        cells.add(cell);
                    }
                }
            }
        }
        for (Contender c : contenders) {
            c.close();
        }
        progress.done();
        return new Outcome(withRelative(cells), List.copyOf(checks));
    }

    /**
     * Why a contender is not timed in a precision, or {@code null} when it is.
     *
     * @param c the contender
     * @param precision the precision
     * @return {@code "no bf16 (runs fp32)"}, or {@code null}
     */
    static String lacks(Contender c, Precision precision) {
        if (c.precisions().contains(precision)) {
            return null;
        }
        return "no " + label(precision).strip() + " (runs " + c.precisions().stream().map(p -> label(p).strip())
                .collect(java.util.stream.Collectors.joining(", ")) + ")";
    }

    /** @return {@code " bf16"} after a contender's name, or nothing in a run in float32 alone (as before precisions) */
    private String named(Precision precision) {
        return config.precisions().equals(List.of(Precision.FP32)) ? "" : label(precision);
    }

    /** @return {@code " bf16"}: the precision as the report and the progress name it after a contender */
    static String label(Precision precision) {
        return " " + precision.name().toLowerCase(Locale.ROOT);
    }

    /** One length's inputs in one precision; the gradient tensors only with {@code --backward}. */
    private record Inputs(AttentionProblem problem, Tensor q, Tensor k, Tensor v, Tensor out, Tensor dOut, Tensor dq,
                          Tensor dk, Tensor dv) {
    }

    /**
     * The inputs of length {@code n}: random normal values seeded with {@code n}, the same in every precision,
     * rounded to the precision's element type ({@link #random}).
     */
    private Inputs inputs(int n, Precision precision) {
        AttentionProblem problem = problem(n, precision);
        try {
            Random random = new Random(n);
            Tensor q = random(random, n, precision);
            Tensor k = random(random, n, precision);
            Tensor v = random(random, n, precision);
            Tensor out = zeros(n);
            if (!config.backward()) {
                return new Inputs(problem, q, k, v, out, null, null, null, null);
            }
            return new Inputs(problem, q, k, v, out, random(random, n, precision), zeros(n), zeros(n), zeros(n));
        } catch (OutOfMemoryError e) {
            throw new NotEnoughMemoryException(heapAdvice(config, n, Runtime.getRuntime().maxMemory()));
        }
    }

    /**
     * Java heap one length needs: {@code q}, {@code k}, {@code v} and {@code out} (with {@code --backward}
     * also {@code dOut}, {@code dq}, {@code dk}, {@code dv}) of {@code B·H·N·D} floats each, and room for the
     * contenders' own memory (a quarter more, at least 256 MiB).
     *
     * @param config the run
     * @param n the length
     * @return bytes
     */
    static long heapNeeded(Config config, int n) {
        long tensor = 4L * config.batch() * config.heads() * n * config.headDim();
        long tensors = (config.backward() ? 8 : 4) * tensor;
        return tensors + Math.max(256L << 20, tensors / 4);
    }

    /**
     * Refuses, before anything runs, a run whose longest length cannot fit the heap, or whose tensors
     * would be longer than a Java array.
     *
     * @param config the run
     * @param maxHeap the JVM's maximum heap ({@link Runtime#maxMemory()})
     * @throws NotEnoughMemoryException with the {@code -Xmx} to use
     * @throws IllegalArgumentException when a tensor has more than {@code 2^31 − 8} elements
     */
    static void requireHeap(Config config, long maxHeap) {
        int n = config.lengths()[config.lengths().length - 1];
        long elements = (long) config.batch() * config.heads() * n * config.headDim();
        if (elements > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "N=%,d: a tensor of B·H·N·D = %,d floats is "
                    + "longer than a Java array (2^31 - 8); use fewer heads or a smaller batch", n, elements));
        }
        if (heapNeeded(config, n) > maxHeap) {
            throw new NotEnoughMemoryException(heapAdvice(config, n, maxHeap));
        }
    }

    /**
     * Builds the pattern's layout for every length before anything runs, so a pattern that fits only some
     * of them (a {@code layout(file=...)} made for the first length) is refused before the first is timed.
     * Layouts are small ({@code O(nnz)}), so this costs milliseconds even at a million tokens.
     *
     * @param config the run
     * @throws IllegalArgumentException naming the length and why its layout cannot be built
     */
    static void requireLayouts(Config config) {
        for (int n : config.lengths()) {
            AttentionProblem p = AttentionProblem.builder().batch(config.batch()).heads(config.heads()).length(n)
                    .headDim(config.headDim()).build();
            try {
                Starling.layout(p, config.pattern());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--lengths " + n + ": " + e.getMessage(), e);
            }
        }
    }

    /** The one line a too-small heap gets: what the length needs and the option that gives it. */
    static String heapAdvice(Config config, int n, long maxHeap) {
        long need = heapNeeded(config, n);
        long tensor = 4L * config.batch() * config.heads() * n * config.headDim();
        long suggest = (long) Math.ceil((need + (1L << 30)) / (double) (1L << 30));
        return String.format(Locale.ROOT, "N=%,d needs about %.1f GiB of Java heap (%s of %s each, and room for the "
                + "contenders), more than this JVM's %.1f GiB: run with STARLING_JAVA_OPTS=-Xmx%dg ./starling compare ...",
                n, need / 1073741824.0, config.backward() ? "q, k, v, out, dOut, dq, dk, dv" : "q, k, v and out",
                gib(tensor), maxHeap / 1073741824.0, suggest);
    }

    private static String gib(long bytes) {
        return bytes >= 1L << 30 ? String.format(Locale.ROOT, "%.1f GiB", bytes / 1073741824.0)
                : String.format(Locale.ROOT, "%.0f MiB", bytes / 1048576.0);
    }

    private AttentionProblem problem(int n, Precision precision) {
        return AttentionProblem.builder().batch(config.batch()).heads(config.heads()).length(n)
                .headDim(config.headDim()).precision(precision).build();
    }

    /**
     * Standard normal floats, seeded from {@code random}: chunks of {@value #CHUNK} filled in parallel, each
     * from its own {@link SplittableRandom} (ziggurat Gaussians), so the values do not depend on the
     * threads and a million tokens' 2 GiB tensors take seconds, not a minute. In a 16-bit precision each
     * value is rounded to that type ({@link ElementType#quantize}, to nearest, ties to even) and held as a
     * float32: every contender reads the same representable values, and the oracle computes on them.
     */
    private Tensor random(Random random, int n, Precision precision) {
        ElementType type = elementType(precision);
        float[] d = new float[config.batch() * config.heads() * n * config.headDim()];
        long seed = random.nextLong();
        IntStream.range(0, (d.length + CHUNK - 1) / CHUNK).parallel().forEach(c -> {
            SplittableRandom r = new SplittableRandom(seed + c * 0x9E3779B97F4A7C15L);
            for (int i = c * CHUNK, end = Math.min(d.length, i + CHUNK); i < end; i++) {
                d[i] = type.quantize((float) r.nextGaussian());
            }
        });
        return Tensor.bhsd(d, config.batch(), config.heads(), n, config.headDim());
    }

    /**
     * @param precision one of {@link #PRECISIONS}
     * @return the element type its inputs are rounded to: {@link ElementType#FP32} (no rounding) or
     *         {@link ElementType#BF16}
     */
    static ElementType elementType(Precision precision) {
        return switch (precision) {
            case FP32 -> ElementType.FP32;
            case BF16 -> ElementType.BF16;
            case FP16 -> ElementType.FP16;
            case TF32 -> throw new IllegalArgumentException("compare has no tf32 inputs: it times " + PRECISIONS);
        };
    }

    /** Elements per chunk of {@link #random}. */
    private static final int CHUNK = 1 << 16;

    private Tensor zeros(int n) {
        return Tensor.zeros(TensorLayout.BHSD, config.batch(), config.heads(), n, config.headDim());
    }

    /** @return the length the oracle check runs on: the smallest length, at most {@link #MAX_CHECK_LENGTH} */
    private int checkLength() {
        return Math.min(config.lengths()[0], MAX_CHECK_LENGTH);
    }

    /**
     * Checks a contender against the float64 oracle on {@link #checkLength()}: sparse backends over the
     * pattern, dense peers over every pair; with {@code --backward} its gradients too. In a 16-bit precision
     * the inputs are rounded to it ({@link #random}), the oracle computes on those values, and the output
     * (and the gradients) pass within the precision's row of the kit's tolerance table
     * ({@link Tolerance#of}, {@link Tolerance#gradient}), as the kit checks a backend in that precision.
     *
     * @param precision the precision
     * @param outputs the oracle's outputs in this precision, computed once for the sparse and once for the dense
     *                contenders
     * @param gradients the same for the gradients
     * @return {@link Check#AGREED}, {@code "not checked: why"}, or {@code "WRONG: what"}
     */
    private String check(Contender c, Precision precision, Map<Boolean, DenseOracle.Result> outputs,
                         Map<Boolean, GradientOracle.Result> gradients) {
        int n = checkLength();
        AttentionProblem p = problem(n, precision);
        Random random = new Random(CHECK_SEED);
        Tensor q = random(random, n, precision);
        Tensor k = random(random, n, precision);
        Tensor v = random(random, n, precision);
        Tensor dOut = random(random, n, precision);
        PatternSpec pattern = c.dense() ? Patterns.parse("dense(block=" + config.pattern().blockSize() + ")")
                : config.pattern();
        BlockLayout layout = Starling.layout(p, pattern);
        Tensor out = zeros(n);
        Tensor outOfStep = zeros(n);
        Tensor[] grads = {zeros(n), zeros(n), zeros(n)};
        String refused = c.refuses(p);
        if (refused != null) {
            return "not checked: " + refused;
        }
        try {
            c.prepare(p, q, k, v);
            c.run(out);
            if (config.backward()) {
                c.runBackward(outOfStep, dOut, grads[0], grads[1], grads[2]);
            }
        } catch (RuntimeException e) {
            return "WRONG: threw " + e;
        } finally {
            c.close();
        }
        DenseOracle.Result want = outputs.computeIfAbsent(c.dense(), d -> DenseOracle.compute(p, layout, q, k, v));
        Tolerance tolerance = Tolerance.of(precision);
        Comparison.Outcome o = Comparison.compare(p, want, out, null, tolerance);
        if (!o.ok()) {
            return "WRONG: " + o.message();
        }
        if (config.backward()) {
            o = Comparison.compare(p, want, outOfStep, null, tolerance);
            if (!o.ok()) {
                return "WRONG: the output of forward + backward: " + o.message();
            }
            GradientOracle.Result g = gradients.computeIfAbsent(c.dense(),
                    d -> GradientOracle.compute(p, layout, q, k, v, dOut));
            o = GradientComparison.compare(p, layout, g, grads[0], grads[1], grads[2], Tolerance.gradient(precision));
            if (!o.ok()) {
                return "WRONG: " + o.message();
            }
        }
        return Check.AGREED;
    }

    /**
     * Times one contender at one length: prepare, warm up ({@link #WARMUP_MIN_SECONDS} and
     * {@link #WARMUP_MIN_CALLS} calls, whichever takes longer, stopping once {@link #WARMUP_MAX_SECONDS}
     * have passed), then the timed calls.
     *
     * @param previous its last cell with numbers for this pass at a shorter length, or {@code null}
     */
    private Cell time(Contender c, Pass pass, Inputs in, Cell previous) {
        AttentionProblem p = in.problem();
        String refused = c.refuses(p);
        if (refused != null) {
            return noNumber(c.name(), c.dense(), pass, p.precision(), p.queryLength(), refused);
        }
        double flops = pass.work() * TokenMask.usefulFlops(p, pairs(c, p));
        String slow = tooSlow(c, flops, previous);
        if (slow != null) {
            return noNumber(c.name(), c.dense(), pass, p.precision(), p.queryLength(), slow);
        }
        Runnable call = pass == Pass.FORWARD ? () -> c.run(in.out())
                : () -> c.runBackward(in.out(), in.dOut(), in.dq(), in.dk(), in.dv());
        try (MemorySampler memory = new MemorySampler()) {
            c.prepare(p, in.q(), in.k(), in.v());
            memory.prepared();
            long warmStart = System.nanoTime();
            int warmups = 0;
            double lastMs;
            do {
                progress.detail("warm-up call " + (warmups + 1));
                lastMs = timedCall(call, memory);
                warmups++;
            } while (warmups < 1_000_000 && seconds(warmStart) < WARMUP_MAX_SECONDS
                    && (seconds(warmStart) < WARMUP_MIN_SECONDS || warmups < WARMUP_MIN_CALLS));
            int reps = (int) Math.max(3, Math.min(config.reps(), Math.floor(config.cellSeconds() * 1000 / lastMs)));
            double[] ms = new double[reps];
            for (int r = 0; r < reps; r++) {
                progress.detail("call " + (r + 1) + "/" + reps);
                ms[r] = timedCall(call, memory);
            }
            c.close();
            Arrays.sort(ms);
            double median = reps % 2 == 1 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
            return new Cell(c.name(), c.dense(), pass, p.precision(), p.queryLength(), "ok", median, ms[0], ms[reps - 1], reps,
                    warmups, flops / median / 1e6, Double.NaN, memory.peakAboveBaseline());
        } catch (OutOfMemoryError e) {
            c.close();
            return noNumber(c.name(), c.dense(), pass, p.precision(), p.queryLength(), OUT_OF_MEMORY + " (" + e.getMessage()
                    + "); give the JVM more with STARLING_JAVA_OPTS=-Xmx<size>");
        } catch (RuntimeException e) {
            c.close();
            return noNumber(c.name(), c.dense(), pass, p.precision(), p.queryLength(), "failed: " + e);
        }
    }

    private static double timedCall(Runnable call, MemorySampler memory) {
        memory.beforeCall();
        long t = System.nanoTime();
        call.run();
        double ms = (System.nanoTime() - t) / 1e6;
        memory.afterCall();
        return ms;
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }

    /**
     * Whether one call is predicted to take longer than {@link Config#maxCallSeconds()}: from the contender's
     * time at the previous length scaled by useful work, or, for a dense peer never timed yet, at
     * {@link #DENSE_RATE_CEILING_GFLOPS}.
     *
     * @return the reason to skip, or {@code null}
     */
    private String tooSlow(Contender c, double flops, Cell previous) {
        double predictedMs;
        String from;
        if (previous != null) {
            predictedMs = flops / (previous.gflops() * 1e6);
            from = String.format(Locale.ROOT, "its %.1f useful GFLOP/s at N=%,d", previous.gflops(), previous.length());
        } else if (c.dense()) {
            predictedMs = flops / (DENSE_RATE_CEILING_GFLOPS * 1e6);
            from = String.format(Locale.ROOT, "at most %.0f GFLOP/s on a CPU", DENSE_RATE_CEILING_GFLOPS);
        } else {
            return null;
        }
        if (predictedMs <= config.maxCallSeconds() * 1000) {
            return null;
        }
        return String.format(Locale.ROOT, "skipped: one call would take about %s (%s), over --max-call-seconds %s",
                CompareMain.duration((long) (predictedMs * 1e6)), from, CompareMain.duration((long) (config.maxCallSeconds() * 1e9)));
    }

    private long pairs(Contender c, AttentionProblem p) {
        if (c.dense()) {
            return (long) p.batch() * p.queryHeads() * p.queryLength() * p.keyLength();
        }
        return TokenMask.of(p, Starling.layout(p, config.pattern())).allowedPairs();
    }

    /** A row about a contender as a whole in every precision (unavailable, no backward pass): listed as fp32. */
    private static Cell noNumber(String name, boolean dense, int length, String status) {
        return noNumber(name, dense, Pass.FORWARD, Precision.FP32, length, status);
    }

    private static Cell noNumber(String name, boolean dense, Pass pass, Precision precision, int length, String status) {
        return new Cell(name, dense, pass, precision, length, status, Double.NaN, Double.NaN, Double.NaN, 0, 0, Double.NaN,
                Double.NaN, 0);
    }

    private static List<Cell> withRelative(List<Cell> cells) {
        List<Cell> out = new ArrayList<>();
        for (Cell c : cells) {
            double best = cells.stream().filter(x -> x.ok() && x.length() == c.length() && x.pass() == c.pass())
                    .mapToDouble(Cell::medianMs).min().orElse(Double.NaN);
            out.add(c.ok() ? new Cell(c.contender(), c.dense(), c.pass(), c.precision(), c.length(), c.status(), c.medianMs(),
                    c.minMs(), c.maxMs(), c.reps(), c.warmups(), c.gflops(), c.medianMs() / best, c.peakBytes()) : c);
        }
        return out;
    }
}
