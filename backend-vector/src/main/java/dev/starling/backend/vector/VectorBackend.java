package dev.starling.backend.vector;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Option;
import dev.starling.api.PlanOptions;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import java.util.EnumSet;
import java.util.List;

/**
 * Block-sparse attention in pure Java on the Vector API ({@code jdk.incubator.vector}): every
 * feature of DESIGN section 2 in float32, with register-tiled fused kernels that run near the
 * machine's single-precision matrix rate and no native code.
 *
 * <p>Query rows are the vector lanes: a query block ({@code 64} rows = 4 vectors of 16 floats
 * with AVX-512) is transposed once per work unit, and against each allowed key block the kernel
 * computes {@code Sᵀ = K·(s·Q)ᵀ} in register tiles of 4 row vectors × 4 keys, the online softmax
 * of {@link dev.starling.api.plan.OnlineSoftmax} down the key axis (no horizontal reductions)
 * with a vectorised polynomial {@code exp}, and {@code Oᵀ += Vᵀ·Pᵀ} in tiles of 4 row vectors ×
 * 4 value features (fused multiply-add), reading keys and values in place, one broadcast per
 * feature. Only partial and causal-diagonal blocks pay for a per-row mask. Work units of the
 * shared {@link dev.starling.api.plan.WorkPlan} run longest first on the plan's threads.
 *
 * <p>Available only when the incubator module is in the boot layer: start the JVM with
 * {@value #ENABLE_FLAG}. Without it this class still loads (it never touches a Vector API type)
 * and {@link #availability()} names the flag. Each plan owns a pool of worker threads, by
 * default one per available processor; set {@code -Dstarling.vector.threads=N} or use
 * {@link #withThreads(int)}.
 */
public final class VectorBackend implements SparseAttention {
    /** The incubator module the kernels are written on. */
    public static final String MODULE = "jdk.incubator.vector";
    /** The JVM option that enables the backend. */
    public static final String ENABLE_FLAG = "--add-modules " + MODULE;
    /** System property giving the default pool size of new plans. */
    public static final String THREADS_PROPERTY = "starling.vector.threads";
    /** Selection priority: above nd4j (50), below cuda (100). */
    public static final int PRIORITY = 70;

    /** Threads per plan (the calling thread is one of them); default {@value #THREADS_PROPERTY} or one per processor. */
    public static final Option<Integer> THREADS = Option.positiveInt("threads", THREADS_PROPERTY,
            () -> Runtime.getRuntime().availableProcessors(), "threads per plan (the calling thread is one)");

    private final PlanOptions fixed;

    /** A backend whose plans use {@value #THREADS_PROPERTY} threads, or one per processor. Does no work. */
    public VectorBackend() {
        this.fixed = PlanOptions.none();
    }

    private VectorBackend(PlanOptions fixed) {
        this.fixed = fixed;
    }

    /**
     * A backend whose plans use exactly {@code threads} threads (the calling thread is one of them),
     * unless a plan's options say otherwise.
     *
     * @param threads pool size, {@code >= 1}
     * @return the backend
     * @throws IllegalArgumentException if {@code threads < 1}
     */
    public static VectorBackend withThreads(int threads) {
        return new VectorBackend(PlanOptions.none().with(THREADS, threads));
    }

    @Override
    public List<Option<?>> options() {
        return List.of(THREADS);
    }

    /** @return the threads a plan with these options uses (properties read here, once per plan) */
    int poolSize(PlanOptions options) {
        return checkOptions(options.over(fixed)).get(THREADS);
    }

    @Override
    public String name() {
        return "vector";
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability availability() {
        int threads;
        try {
            threads = poolSize(PlanOptions.none());
        } catch (IllegalArgumentException e) {
            return Availability.unavailable(e.getMessage());
        }
        return availability(ModuleLayer.boot().findModule(MODULE).isPresent(), threads);
    }

    /**
     * The availability decision with the module lookup injected (so it can be tested both ways in
     * one JVM). The kernel class, which uses the Vector API, is loaded only when the module is present.
     *
     * @param moduleInBootLayer whether {@value #MODULE} is in the boot layer
     * @param threads threads per plan, for the note
     * @return available with the vector shape and threads, or unavailable naming {@value #ENABLE_FLAG}
     */
    static Availability availability(boolean moduleInBootLayer, int threads) {
        if (!moduleInBootLayer) {
            return Availability.fixable("the Vector API module " + MODULE + " is not in the boot layer",
                    "start the JVM with " + ENABLE_FLAG + " (java, Surefire argLine, Gradle jvmArgs)");
        }
        try {
            // Named only here, in a method body: this class loads without the module.
            String shape = dev.starling.backend.vector.kernel.TileKernel.describe();
            return Availability.available(shape + ", " + threads + " threads per plan");
        } catch (LinkageError | RuntimeException e) {
            return Availability.unavailable("the Vector API kernels did not load: " + e);
        }
    }

    @Override
    public Capabilities capabilities() {
        return Capabilities.builder("cpu (Java Vector API)").precisions(Precision.FP32)
                .features(Feature.contract()).without(Feature.BLOCK_COUNTS).features(Feature.STRIDED_TENSORS).build();
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        return plan(problem, layout, PlanOptions.none());
    }

    /**
     * {@inheritDoc} Takes {@link #THREADS}.
     */
    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout, PlanOptions options) {
        int threads = poolSize(options);
        checkPlan(problem, layout);
        Availability a = availability();
        if (!a.isAvailable()) {
            throw new IllegalStateException("vector backend is " + a);
        }
        return new VectorPlan(this, problem, layout, threads);
    }
}
