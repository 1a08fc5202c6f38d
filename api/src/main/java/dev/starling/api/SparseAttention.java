package dev.starling.api;

import dev.starling.api.pattern.BlockLayout;

import java.util.List;

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
     * The typed settings this backend's plans take ({@link Option}: threads, kernel family, ...), each
     * with its default; {@code starling backends} lists them.
     *
     * @return the options, empty for a backend with none
     */
    default List<Option<?>> options() {
        return List.of();
    }

    /**
     * Creates a plan with per-plan settings: {@link #plan(AttentionProblem, BlockLayout)} with the given
     * options over the defaults the system properties set ({@link PlanOptions#fromSystemProperties}).
     * Two plans of one backend with different options may live side by side. The default implementation,
     * for a backend with no options, refuses any option and plans as the two-argument method does.
     *
     * @param problem the problem shape. Not modified.
     * @param layout the block layout. Not modified.
     * @param options settings for this plan; options not set take their defaults
     * @return a new plan the caller must close
     * @throws IllegalArgumentException for an option this backend does not take, naming it and those it takes
     */
    default AttentionPlan plan(AttentionProblem problem, BlockLayout layout, PlanOptions options) {
        checkOptions(options);
        return plan(problem, layout);
    }

    /**
     * The options a plan runs with: {@code options} over the system properties' defaults, after
     * refusing an option this backend does not take.
     *
     * @param options the plan's settings, not null
     * @return the resolved options ({@link PlanOptions#get} then gives each value)
     * @throws IllegalArgumentException for an unknown option or a bad property value
     */
    default PlanOptions checkOptions(PlanOptions options) {
        if (options == null) {
            throw new IllegalArgumentException("options must not be null (use PlanOptions.none())");
        }
        options.checkKnown(name(), options());
        return options.over(PlanOptions.fromSystemProperties(options()));
    }

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
        checkPlan(problem, layout, capabilities());
    }

    /**
     * {@link #checkPlan(AttentionProblem, BlockLayout)} against the capabilities of one plan, for a
     * backend whose options change what a plan computes (e.g. kernels that add a precision).
     *
     * @param problem the problem. Not modified.
     * @param layout the layout. Not modified.
     * @param planCapabilities what the plan being made computes
     * @throws IllegalArgumentException if the problem is null or the layout does not fit it
     * @throws UnsupportedOperationException naming each capability the problem needs and the plan lacks
     */
    default void checkPlan(AttentionProblem problem, BlockLayout layout, Capabilities planCapabilities) {
        if (problem == null) {
            throw new IllegalArgumentException("problem must not be null");
        }
        problem.checkLayout(layout);
        planCapabilities.missing(problem, Capabilities.needs(problem, layout)).ifPresent(why -> {
            throw new UnsupportedOperationException(name() + " backend " + why);
        });
    }
}
