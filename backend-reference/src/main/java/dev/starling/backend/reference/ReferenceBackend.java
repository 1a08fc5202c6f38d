package dev.starling.backend.reference;

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

import java.util.List;
import java.util.EnumSet;

/**
 * The pure-Java backend: every feature of DESIGN section 2 in float32, on any JVM.
 *
 * <p>Each plan owns a pool of worker threads, by default one per available processor; set
 * {@code -Dstarling.reference.threads=N} or use {@link #withThreads(int)} to change it.
 */
public final class ReferenceBackend implements SparseAttention {
    /** System property giving the default pool size of new plans. */
    public static final String THREADS_PROPERTY = "starling.reference.threads";
    /** Selection priority: the lowest of the built-in backends. */
    public static final int PRIORITY = 10;

    /** Worker threads per plan; default {@value #THREADS_PROPERTY} or one per processor. */
    public static final Option<Integer> THREADS = Option.positiveInt("threads", THREADS_PROPERTY,
            () -> Runtime.getRuntime().availableProcessors(), "worker threads per plan");

    private final PlanOptions fixed;

    /** A backend whose plans use {@value #THREADS_PROPERTY} threads, or one per processor. */
    public ReferenceBackend() {
        this.fixed = PlanOptions.none();
    }

    private ReferenceBackend(PlanOptions fixed) {
        this.fixed = fixed;
    }

    /**
     * A backend whose plans use exactly {@code threads} worker threads, unless a plan's options say otherwise.
     *
     * @param threads pool size, {@code >= 1}
     * @return the backend
     * @throws IllegalArgumentException if {@code threads < 1}
     */
    public static ReferenceBackend withThreads(int threads) {
        return new ReferenceBackend(PlanOptions.none().with(THREADS, threads));
    }

    @Override
    public List<Option<?>> options() {
        return List.of(THREADS);
    }

    /**
     * @param options a plan's options
     * @return the pool size of a plan with these options
     * @throws IllegalArgumentException when {@value #THREADS_PROPERTY} is set but not a positive integer
     */
    int poolSize(PlanOptions options) {
        return checkOptions(options.over(fixed)).get(THREADS);
    }

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability availability() {
        try {
            return Availability.available("pure Java, " + poolSize(PlanOptions.none()) + " threads per plan");
        } catch (IllegalArgumentException e) {
            return Availability.unavailable(e.getMessage());
        }
    }

    @Override
    public Capabilities capabilities() {
        return Capabilities.builder("cpu (pure Java)").precisions(Precision.FP32)
                .features(Feature.contract()).without(Feature.BLOCK_COUNTS).features(Feature.STRIDED_TENSORS).build();
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        return plan(problem, layout, PlanOptions.none());
    }

    /** {@inheritDoc} Takes {@link #THREADS}. */
    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout, PlanOptions options) {
        return new ReferencePlan(this, problem, layout, poolSize(options));
    }
}
