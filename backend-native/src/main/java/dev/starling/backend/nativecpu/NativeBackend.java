package dev.starling.backend.nativecpu;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Option;
import dev.starling.api.PlanOptions;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import java.util.EnumSet;
import java.util.List;

/**
 * Block-sparse attention in C kernels on the CPU's matrix and vector units, called through JNI: the
 * CPU counterpart of the cuda backend. Every feature of DESIGN section 2, in {@code fp32} and
 * {@code bf16} (bf16 products, float32 accumulation and softmax).
 *
 * <p>One tile algorithm ({@code src/main/c/attention_kernel.h}: {@code S = Q·Kᵀ} in 16 × 16 tiles,
 * an online softmax in base 2 on 64 keys at a time, {@code O = α·O + P·V} in tiles) runs on the path
 * the CPU has, chosen at run time by CPUID ({@link KernelPath}):
 * <ul>
 *   <li>bf16: {@code amx-bf16} (AMX, Sapphire Rapids and later; Linux grants the tile state through
 *       {@code arch_prctl}, and a refusal falls back to the next path), {@code avx512-bf16}
 *       ({@code vdpbf16ps}: Cooper Lake, Zen 4 and later), {@code portable-bf16} (the same tiles in
 *       plain C, any x86-64 CPU);</li>
 *   <li>fp32: {@code avx512-fp32}, {@code avx2-fp32}, {@code portable-fp32}.</li>
 * </ul>
 * {@value #ISA_PROPERTY} (or {@link #withIsa}) caps the level for testing; {@value #THREADS_PROPERTY}
 * (or {@link #withThreads}) sets the threads of a call, by default one per available processor.
 *
 * <p>Unavailable, with the reason, where the library is not in the jar (no {@code gcc} at build
 * time) or does not load (not Linux x86-64). A call whose inputs hold NaN or ±∞ is computed exactly
 * in Java ({@link dev.starling.api.plan.ExactRow}), so non-finite values land where section 2 says.
 */
public final class NativeBackend implements SparseAttention {
    /** System property: the highest instruction-set level plans use ({@link Isa#parse}), e.g. {@code portable}. */
    public static final String ISA_PROPERTY = "starling.native.isa";
    /** System property: threads per call (default: available processors). */
    public static final String THREADS_PROPERTY = "starling.native.threads";
    /**
     * Selection priority: below vector (70), above nd4j (50). Measured on a 2-core Sapphire Rapids,
     * the avx512-fp32 path runs as fast as vector, not faster (docs/benchmarks.md), so vector stays
     * first for float32; bf16 problems, which vector does not run, come here on any CPU without cuda.
     */
    public static final int PRIORITY = 60;

    /** The highest instruction-set level plans use (the CPU's level caps it further); default {@value #ISA_PROPERTY} or amx. */
    public static final Option<Isa> ISA = Option.of("isa", Isa.class, ISA_PROPERTY, () -> Isa.AMX, Isa::parse, v -> v,
            "highest instruction-set level: portable, avx2, avx512, avx512-bf16, amx (the CPU caps it)");
    /** Threads per call, at most 256 (the calling thread is one); default {@value #THREADS_PROPERTY} or one per processor. */
    public static final Option<Integer> THREADS = Option.positiveInt("threads", THREADS_PROPERTY,
            () -> Math.min(256, Runtime.getRuntime().availableProcessors()), "threads per call, at most 256 used");

    private final PlanOptions fixed;

    /** A backend reading {@value #ISA_PROPERTY} and {@value #THREADS_PROPERTY} when it plans. Does no work. */
    public NativeBackend() {
        this(PlanOptions.none());
    }

    private NativeBackend(PlanOptions fixed) {
        this.fixed = fixed;
    }

    /**
     * A backend whose plans use at most {@code level} (the CPU's level caps it further).
     *
     * @param level the highest level, e.g. {@link Isa#PORTABLE} for the emulated tiles
     * @return the backend
     */
    public static NativeBackend withIsa(Isa level) {
        if (level == null) {
            throw new IllegalArgumentException("level must not be null");
        }
        return new NativeBackend(PlanOptions.none().with(ISA, level));
    }

    /**
     * A backend whose calls run on exactly {@code threads} threads (the calling thread is one).
     *
     * @param threads threads per call, {@code >= 1}
     * @return the backend
     */
    public static NativeBackend withThreads(int threads) {
        return new NativeBackend(PlanOptions.none().with(THREADS, threads));
    }

    @Override
    public List<Option<?>> options() {
        return List.of(ISA, THREADS);
    }

    private PlanOptions resolved(PlanOptions options) {
        return checkOptions(options.over(fixed));
    }

    /** @return threads per call of a plan with these (resolved) options */
    private static int threads(PlanOptions resolved) {
        return Math.min(256, resolved.get(THREADS));
    }

    /**
     * @return the level plans use: the CPU's, capped by {@link #withIsa} or {@value #ISA_PROPERTY}
     * @throws IllegalStateException when the library is not loaded
     * @throws IllegalArgumentException when {@value #ISA_PROPERTY} names no level
     */
    public Isa level() {
        return level(resolved(PlanOptions.none()));
    }

    private static Isa level(PlanOptions resolved) {
        String failure = NativeKernels.loadFailure();
        if (failure != null) {
            throw new IllegalStateException("native backend is unavailable: " + failure);
        }
        return NativeKernels.machineIsa(NativeKernels.probe()).min(resolved.get(ISA));
    }

    /**
     * @param precision {@link Precision#FP32} or {@link Precision#BF16}
     * @return the path a plan for that precision runs
     * @throws IllegalStateException when the library is not loaded
     */
    public KernelPath path(Precision precision) {
        return KernelPath.best(precision, level());
    }

    @Override
    public String name() {
        return "native";
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability availability() {
        String failure = NativeKernels.loadFailure();
        if (failure != null) {
            return Availability.unavailable(failure);
        }
        Isa level;
        int threads;
        try {
            PlanOptions resolved = resolved(PlanOptions.none());
            level = level(resolved);
            threads = threads(resolved);
        } catch (IllegalArgumentException e) {
            return Availability.unavailable(e.getMessage());
        }
        String note = NativeKernels.amxNote(NativeKernels.probe());
        return Availability.available("fp32 on " + KernelPath.best(Precision.FP32, level).text() + ", bf16 on "
                + KernelPath.best(Precision.BF16, level).text() + ", " + threads + " threads per call"
                + (note == null ? "" : "; " + note));
    }

    @Override
    public Capabilities capabilities() {
        return Capabilities.full("cpu (native kernels, JNI)", EnumSet.of(Precision.FP32, Precision.BF16));
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        return plan(problem, layout, PlanOptions.none());
    }

    /** {@inheritDoc} Takes {@link #ISA} and {@link #THREADS}. */
    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout, PlanOptions options) {
        PlanOptions resolved = resolved(options);
        checkPlan(problem, layout);
        Availability a = availability();
        if (!a.isAvailable()) {
            throw new IllegalStateException("native backend is " + a);
        }
        return new NativePlan(this, problem, layout, KernelPath.best(problem.precision(), level(resolved)),
                threads(resolved));
    }
}
