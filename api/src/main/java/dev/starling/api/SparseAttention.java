package dev.starling.api;

import dev.starling.api.pattern.BlockLayout;

/**
 * A block-sparse attention backend: the service interface every backend implements and
 * registers in {@code META-INF/services/dev.starling.api.SparseAttention}.
 *
 * <p>Implementations have a public no-argument constructor that does no work and never throws;
 * native libraries are loaded lazily by {@link #availability()} or {@link #plan}. What is
 * computed is fixed by DESIGN section 2 and checked by the conformance kit.
 */
public interface SparseAttention {

    /** @return a stable lowercase name, e.g. {@code "reference"}, used by {@code -Dstarling.backend} */
    String name();

    /** @return selection priority; higher wins (reference low, nd4j middle, cuda high) */
    int priority();

    /**
     * Whether this backend can run in this process. Never throws: any failure, native or
     * otherwise, becomes an unavailable result with the reason.
     *
     * @return availability with a reason
     */
    Availability availability();

    /** @return the features and precisions this backend computes */
    Capabilities capabilities();

    /**
     * Creates a plan: the one-time work (threads, device buffers, layout upload) for one problem
     * shape and one layout; {@link AttentionPlan#forward} then runs many times.
     *
     * @param problem the problem shape. Not modified.
     * @param layout the block layout, built for the problem's {@code Nq}, {@code Nk} and query heads. Not modified.
     * @return a new plan the caller must close
     * @throws IllegalArgumentException if the layout does not fit the problem
     * @throws UnsupportedOperationException naming a capability the problem needs and this backend lacks
     * @throws IllegalStateException if the backend is unavailable
     */
    AttentionPlan plan(AttentionProblem problem, BlockLayout layout);

    /**
     * The checks every {@link #plan} makes first, in one place: the problem is not null, the
     * layout was built for its lengths and heads, and this backend's capabilities cover it.
     *
     * @param problem the problem. Not modified.
     * @param layout the layout. Not modified.
     * @throws IllegalArgumentException if the problem is null or the layout does not fit it
     * @throws UnsupportedOperationException naming each capability the problem needs and this backend lacks
     */
    default void checkPlan(AttentionProblem problem, BlockLayout layout) {
        if (problem == null) {
            throw new IllegalArgumentException("problem must not be null");
        }
        problem.checkLayout(layout);
        capabilities().missing(problem, Capabilities.needs(problem, layout)).ifPresent(why -> {
            throw new UnsupportedOperationException(name() + " backend " + why);
        });
    }
}
