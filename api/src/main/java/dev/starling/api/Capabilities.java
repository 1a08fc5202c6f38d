package dev.starling.api;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * What a backend can compute. Selection matches a problem against these; a backend that does not
 * declare a feature throws {@link UnsupportedOperationException} naming it.
 *
 * @param precisions precisions the backend runs
 * @param causal whether it applies the causal mask
 * @param groupedQuery whether {@code Hq != Hkv} (GQA/MQA) works
 * @param lse whether it writes the log-sum-exp output
 * @param keyLengths whether per-batch key lengths work
 * @param queryLengths whether per-batch query lengths work
 * @param minHeadDim smallest {@code D} and {@code Dv} it accepts
 * @param maxHeadDim largest {@code D} and {@code Dv} it accepts
 * @param device where it computes, e.g. "cpu" or "cuda:0 NVIDIA H100"
 * @param backward whether {@link AttentionPlan#backward} computes gradients (DESIGN section 4)
 */
public record Capabilities(Set<Precision> precisions, boolean causal, boolean groupedQuery, boolean lse,
                           boolean keyLengths, boolean queryLengths, int minHeadDim, int maxHeadDim, String device,
                           boolean backward) {

    /** Copies the precision set. */
    public Capabilities {
        precisions = Collections.unmodifiableSet(precisions.isEmpty() ? EnumSet.noneOf(Precision.class) : EnumSet.copyOf(precisions));
        if (minHeadDim < 1 || maxHeadDim < minHeadDim) {
            throw new IllegalArgumentException("head dim limits [" + minHeadDim + ", " + maxHeadDim + "] are empty");
        }
    }

    /**
     * Capabilities without the backward pass (the form before gradients existed).
     *
     * @param precisions precisions the backend runs
     * @param causal whether it applies the causal mask
     * @param groupedQuery whether GQA/MQA works
     * @param lse whether it writes the log-sum-exp output
     * @param keyLengths whether per-batch key lengths work
     * @param queryLengths whether per-batch query lengths work
     * @param minHeadDim smallest {@code D} and {@code Dv}
     * @param maxHeadDim largest {@code D} and {@code Dv}
     * @param device where it computes
     */
    public Capabilities(Set<Precision> precisions, boolean causal, boolean groupedQuery, boolean lse,
                        boolean keyLengths, boolean queryLengths, int minHeadDim, int maxHeadDim, String device) {
        this(precisions, causal, groupedQuery, lse, keyLengths, queryLengths, minHeadDim, maxHeadDim, device, false);
    }

    /**
     * @param backward whether the backward pass is declared
     * @return these capabilities with {@code backward} set
     */
    public Capabilities withBackward(boolean backward) {
        return new Capabilities(precisions, causal, groupedQuery, lse, keyLengths, queryLengths, minHeadDim, maxHeadDim,
                device, backward);
    }

    /**
     * Every feature of DESIGN section 2 in the given precisions, any head dimension; no backward pass
     * (add it with {@link #withBackward}).
     *
     * @param device where the backend computes
     * @param precisions precisions it runs
     * @return the capabilities
     */
    public static Capabilities full(String device, Set<Precision> precisions) {
        return new Capabilities(precisions, true, true, true, true, true, 1, Integer.MAX_VALUE, device, false);
    }

    /**
     * Why this backend cannot run {@code problem}, if it cannot.
     *
     * @param problem the problem. Not modified.
     * @param wantsLse whether the caller asks for the LSE output
     * @return empty when supported, else every missing capability in one sentence
     */
    public Optional<String> unsupported(AttentionProblem problem, boolean wantsLse) {
        return unsupported(problem, wantsLse, false);
    }

    /**
     * Why this backend cannot run {@code problem}, if it cannot, also for gradients.
     *
     * @param problem the problem. Not modified.
     * @param wantsLse whether the caller asks for the LSE output
     * @param wantsBackward whether the caller will call {@link AttentionPlan#backward}
     * @return empty when supported, else every missing capability in one sentence
     */
    public Optional<String> unsupported(AttentionProblem problem, boolean wantsLse, boolean wantsBackward) {
        List<String> missing = new ArrayList<>();
        if (wantsBackward && !backward) {
            missing.add("BACKWARD");
        }
        if (!precisions.contains(problem.precision())) {
            missing.add("precision " + problem.precision() + " (runs " + precisions + ")");
        }
        if (problem.causal() && !causal) {
            missing.add("CAUSAL");
        }
        if (problem.queryHeads() != problem.kvHeads() && !groupedQuery) {
            missing.add("GROUPED_QUERY (Hq=" + problem.queryHeads() + ", Hkv=" + problem.kvHeads() + ")");
        }
        if (wantsLse && !lse) {
            missing.add("LSE");
        }
        if (problem.hasKeyLengths() && !keyLengths) {
            missing.add("KEY_LENGTHS");
        }
        if (problem.hasQueryLengths() && !queryLengths) {
            missing.add("QUERY_LENGTHS");
        }
        for (int d : new int[] {problem.headDim(), problem.valueDim()}) {
            if (d < minHeadDim || d > maxHeadDim) {
                missing.add("head dim " + d + " (supports " + minHeadDim + ".." + maxHeadDim + ")");
                break;
            }
        }
        return missing.isEmpty() ? Optional.empty() : Optional.of("does not support " + String.join(", ", missing));
    }

    /** @return a one-line summary for {@code starling backends} */
    public String summary() {
        List<String> parts = new ArrayList<>();
        parts.add(device);
        parts.add(precisions.toString().toLowerCase());
        if (causal) parts.add("causal");
        if (groupedQuery) parts.add("gqa");
        if (lse) parts.add("lse");
        if (keyLengths) parts.add("key-lengths");
        if (queryLengths) parts.add("query-lengths");
        if (backward) parts.add("backward");
        parts.add("head dim " + minHeadDim + ".." + (maxHeadDim == Integer.MAX_VALUE ? "any" : String.valueOf(maxHeadDim)));
        return String.join(", ", parts);
    }
}
