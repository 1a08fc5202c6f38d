package dev.starling.backend.reference;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
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

    private final int threads;

    /** A backend whose plans use {@value #THREADS_PROPERTY} threads, or one per processor. */
    public ReferenceBackend() {
        this.threads = 0;
    }

    private ReferenceBackend(int threads) {
        this.threads = threads;
    }

    /**
     * A backend whose plans use exactly {@code threads} worker threads.
     *
     * @param threads pool size, {@code >= 1}
     * @return the backend
     */
    public static ReferenceBackend withThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        return new ReferenceBackend(threads);
    }

    /**
     * @return the pool size of new plans
     * @throws IllegalArgumentException when {@value #THREADS_PROPERTY} is set but not a positive integer
     */
    int poolSize() {
        if (threads > 0) {
            return threads;
        }
        String configured = System.getProperty(THREADS_PROPERTY);
        if (configured == null || configured.isBlank()) {
            return Runtime.getRuntime().availableProcessors();
        }
        try {
            int n = Integer.parseInt(configured.strip());
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException("-D" + THREADS_PROPERTY + "=" + configured + " is not a positive integer");
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
            return Availability.available("pure Java, " + poolSize() + " threads per plan");
        } catch (IllegalArgumentException e) {
            return Availability.unavailable(e.getMessage());
        }
    }

    @Override
    public Capabilities capabilities() {
        return Capabilities.builder("cpu (pure Java)").precisions(Precision.FP32)
                .features(Feature.contract()).features(Feature.STRIDED_TENSORS).build();
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        return new ReferencePlan(this, problem, layout, poolSize());
    }
}
