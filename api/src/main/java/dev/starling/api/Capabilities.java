package dev.starling.api;

import dev.starling.api.pattern.BlockLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * What a backend can compute: a set of {@link Feature}s, the precisions it runs, the head
 * dimensions it accepts and where it computes. Immutable; made with {@link #builder(String)}.
 *
 * <p>Selection, plan creation and the conformance kit decide with one rule, {@link #missing}: the
 * features a problem, its layout and the call need ({@link #needs}) minus the declared ones, plus
 * the precision and the head dims. A backend that lacks a needed contract feature throws
 * {@link UnsupportedOperationException} naming it.
 */
public final class Capabilities {
    private final Set<Feature> features;
    private final Set<Precision> precisions;
    private final int minHeadDim;
    private final int maxHeadDim;
    private final String device;

    private Capabilities(Builder b) {
        this.features = Collections.unmodifiableSet(b.features.clone());
        this.precisions = Collections.unmodifiableSet(b.precisions.clone());
        this.minHeadDim = b.minHeadDim;
        this.maxHeadDim = b.maxHeadDim;
        this.device = b.device;
    }

    /**
     * A builder with no feature, no precision and any head dimension.
     *
     * @param device where the backend computes, e.g. {@code "cpu"} or {@code "cuda:0 NVIDIA H100"}
     * @return the builder
     */
    public static Builder builder(String device) {
        return new Builder(device);
    }

    /**
     * Every contract feature of DESIGN section 2 except {@link Feature#BACKWARD} and
     * {@link Feature#BLOCK_COUNTS}, in the given precisions, any head dimension, no tensor feature
     * (the API converts every tensor to packed float32 on the heap for it).
     *
     * @param device where the backend computes
     * @param precisions precisions it runs
     * @return the capabilities
     */
    public static Capabilities full(String device, Set<Precision> precisions) {
        return builder(device).precisions(precisions).features(Feature.contract())
                .without(Feature.BACKWARD, Feature.BLOCK_COUNTS).build();
    }

    /** @return a builder holding these capabilities, to derive a variant */
    public Builder toBuilder() {
        Builder b = new Builder(device);
        b.features.addAll(features);
        b.precisions.addAll(precisions);
        b.minHeadDim = minHeadDim;
        b.maxHeadDim = maxHeadDim;
        return b;
    }

    /** @return the declared features. Unmodifiable. */
    public Set<Feature> features() {
        return features;
    }

    /** @return whether {@code feature} is declared */
    public boolean has(Feature feature) {
        return features.contains(feature);
    }

    /** @return the precisions the backend runs. Unmodifiable. */
    public Set<Precision> precisions() {
        return precisions;
    }

    /** @return the smallest {@code D} and {@code Dv} accepted */
    public int minHeadDim() {
        return minHeadDim;
    }

    /** @return the largest {@code D} and {@code Dv} accepted */
    public int maxHeadDim() {
        return maxHeadDim;
    }

    /** @return where the backend computes */
    public String device() {
        return device;
    }

    /**
     * The contract features one call needs: those of the problem ({@link AttentionProblem#features()}),
     * {@link Feature#CAUSAL_SHIFT} when the layout is causal and the problem sets its shift,
     * {@link Feature#BLOCK_COUNTS} when the layout counts a block more than once, and the call's own.
     *
     * @param problem the problem. Not modified.
     * @param layout its layout, or {@code null} when not known yet. Not modified.
     * @param call features of the call itself, e.g. {@link Feature#LSE}, {@link Feature#BACKWARD}
     * @return a new set
     */
    public static EnumSet<Feature> needs(AttentionProblem problem, BlockLayout layout, Feature... call) {
        EnumSet<Feature> needed = EnumSet.copyOf(problem.features());
        if (layout != null && layout.causal() && problem.hasCausalShift()) {
            needed.add(Feature.CAUSAL_SHIFT);
        }
        if (layout != null && layout.hasCounts()) {
            needed.add(Feature.BLOCK_COUNTS);
        }
        Collections.addAll(needed, call);
        return needed;
    }

    /**
     * Why this backend cannot run a call, if it cannot: the needed features it lacks (in
     * {@link Feature} order, by constant name), then the precision and the head dims.
     *
     * @param problem the problem. Not modified.
     * @param needed the features the call needs ({@link #needs})
     * @return empty when supported, else one sentence naming everything missing
     */
    public Optional<String> missing(AttentionProblem problem, Set<Feature> needed) {
        List<String> missing = new ArrayList<>();
        EnumSet<Feature> lacking = needed.isEmpty() ? EnumSet.noneOf(Feature.class) : EnumSet.copyOf(needed);
        lacking.removeAll(features);
        for (Feature f : lacking) {
            missing.add(f == Feature.GROUPED_QUERY
                    ? f + " (Hq=" + problem.queryHeads() + ", Hkv=" + problem.kvHeads() + ")" : f.name());
        }
        if (!precisions.contains(problem.precision())) {
            missing.add("precision " + problem.precision() + " (runs " + precisions + ")");
        }
        for (int d : new int[] {problem.headDim(), problem.valueDim()}) {
            if (d < minHeadDim || d > maxHeadDim) {
                missing.add("head dim " + d + " (supports " + minHeadDim + ".." + maxHeadDim + ")");
                break;
            }
        }
        return missing.isEmpty() ? Optional.empty() : Optional.of("does not support " + String.join(", ", missing));
    }

    /**
     * {@link #missing} for a problem with its layout unknown (no {@link Feature#BLOCK_COUNTS}).
     *
     * @param problem the problem. Not modified.
     * @param wantsLse whether the caller asks for the LSE output
     * @param wantsBackward whether the caller will call {@link AttentionPlan#backward}
     * @return empty when supported, else every missing capability in one sentence
     */
    public Optional<String> unsupported(AttentionProblem problem, boolean wantsLse, boolean wantsBackward) {
        EnumSet<Feature> needed = needs(problem, null);
        if (wantsLse) {
            needed.add(Feature.LSE);
        }
        if (wantsBackward) {
            needed.add(Feature.BACKWARD);
        }
        return missing(problem, needed);
    }

    /**
     * {@link #unsupported(AttentionProblem, boolean, boolean)} without gradients.
     *
     * @param problem the problem. Not modified.
     * @param wantsLse whether the caller asks for the LSE output
     * @return empty when supported, else every missing capability in one sentence
     */
    public Optional<String> unsupported(AttentionProblem problem, boolean wantsLse) {
        return unsupported(problem, wantsLse, false);
    }

    /** @return a one-line summary for {@code starling backends}: device, precisions, feature labels, head dims */
    public String summary() {
        List<String> parts = new ArrayList<>();
        parts.add(device);
        parts.add(precisions.toString().toLowerCase(java.util.Locale.ROOT));
        for (Feature f : features) {
            parts.add(f.label());
        }
        parts.add("head dim " + minHeadDim + ".." + (maxHeadDim == Integer.MAX_VALUE ? "any" : String.valueOf(maxHeadDim)));
        return String.join(", ", parts);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Capabilities c && c.features.equals(features) && c.precisions.equals(precisions)
                && c.minHeadDim == minHeadDim && c.maxHeadDim == maxHeadDim && c.device.equals(device);
    }

    @Override
    public int hashCode() {
        return Objects.hash(features, precisions, minHeadDim, maxHeadDim, device);
    }

    @Override
    public String toString() {
        return "Capabilities[" + summary() + "]";
    }

    /** Builds {@link Capabilities}. */
    public static final class Builder {
        private final EnumSet<Feature> features = EnumSet.noneOf(Feature.class);
        private final EnumSet<Precision> precisions = EnumSet.noneOf(Precision.class);
        private int minHeadDim = 1;
        private int maxHeadDim = Integer.MAX_VALUE;
        private final String device;

        private Builder(String device) {
            this.device = Objects.requireNonNull(device, "device");
        }

        /** @param add features to declare @return this */
        public Builder features(Feature... add) {
            Collections.addAll(features, add);
            return this;
        }

        /** @param add features to declare @return this */
        public Builder features(Set<Feature> add) {
            features.addAll(add);
            return this;
        }

        /** @param remove features not to declare @return this */
        public Builder without(Feature... remove) {
            for (Feature f : remove) {
                features.remove(f);
            }
            return this;
        }

        /**
         * @param feature a feature
         * @param declared whether to declare it
         * @return this
         */
        public Builder feature(Feature feature, boolean declared) {
            if (declared) {
                features.add(feature);
            } else {
                features.remove(feature);
            }
            return this;
        }

        /** @param add precisions the backend runs @return this */
        public Builder precisions(Precision... add) {
            Collections.addAll(precisions, add);
            return this;
        }

        /** @param add precisions the backend runs @return this */
        public Builder precisions(Set<Precision> add) {
            precisions.addAll(add);
            return this;
        }

        /**
         * @param min smallest {@code D} and {@code Dv} accepted, at least 1
         * @param max largest, at least {@code min}
         * @return this
         */
        public Builder headDims(int min, int max) {
            this.minHeadDim = min;
            this.maxHeadDim = max;
            return this;
        }

        /**
         * @return the capabilities
         * @throws IllegalArgumentException if the head dim range is empty
         */
        public Capabilities build() {
            if (minHeadDim < 1 || maxHeadDim < minHeadDim) {
                throw new IllegalArgumentException("head dim limits [" + minHeadDim + ", " + maxHeadDim + "] are empty");
            }
            return new Capabilities(this);
        }
    }
}
