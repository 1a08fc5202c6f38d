package dev.starling.api;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
import java.util.List;

/**
 * Entry point for applications: pick a backend, materialise a pattern, get a plan.
 *
 * <pre>{@code
 * AttentionProblem problem = AttentionProblem.builder().heads(8).length(4096).headDim(64).build();
 * try (AttentionPlan plan = Starling.plan(problem, Patterns.parse("bigbird(block=64)"))) {
 *     plan.forward(q, k, v, out);
 * }
 * }</pre>
 */
public final class Starling {

    private Starling() {
    }

    /**
     * Materialises {@code pattern} for the problem's lengths and query heads; when the problem
     * is causal the layout is that of {@code causal(pattern)} (random draws included).
     *
     * @param problem the problem. Not modified.
     * @param pattern the pattern
     * @return the layout
     */
    public static BlockLayout layout(AttentionProblem problem, PatternSpec pattern) {
        return pattern.layout(problem.queryLength(), problem.keyLength(), problem.queryHeads(), problem.causal());
    }

    /**
     * The backend {@link BackendSelector} chooses for a problem: the one named by
     * {@code -Dstarling.backend} / {@code STARLING_BACKEND}, else the highest-priority available
     * backend whose capabilities fit.
     *
     * @param problem the problem. Not modified.
     * @return the backend
     * @throws dev.starling.api.selection.NoBackendException when none fits, listing every backend and why
     */
    public static SparseAttention backend(AttentionProblem problem) {
        return BackendSelector.discover().select(problem, false);
    }

    /**
     * Selects a backend (see {@link BackendSelector}) and plans the problem on it.
     *
     * @param problem the problem. Not modified.
     * @param pattern the pattern
     * @return a plan the caller must close
     */
    public static AttentionPlan plan(AttentionProblem problem, PatternSpec pattern) {
        BlockLayout layout = layout(problem, pattern);
        return BackendSelector.discover().select(problem, layout).plan(problem, layout);
    }

    /**
     * Same as {@link #plan(AttentionProblem, PatternSpec)} with pattern text.
     *
     * @param problem the problem
     * @param patternText e.g. {@code "bigbird(block=64, window=3, global=2, random=3)"}
     * @return a plan the caller must close
     */
    public static AttentionPlan plan(AttentionProblem problem, String patternText) {
        return plan(problem, Patterns.parse(patternText));
    }

    /** @return every backend on the class path, highest priority first, with availability */
    public static List<BackendReport> backends() {
        return BackendSelector.discover().reports();
    }
}
