package dev.starling.api;

import dev.starling.api.pattern.BlockLayout;
import java.util.Arrays;
import java.util.Objects;

/**
 * The shape of one attention computation (DESIGN section 2):
 * {@code Q [B, Hq, Nq, D]}, {@code K [B, Hkv, Nk, D]}, {@code V [B, Hkv, Nk, Dv]},
 * output {@code O [B, Hq, Nq, Dv]} and optional {@code LSE [B, Hq, Nq]}.
 *
 * <p>Query head {@code h} reads key/value head {@code h / (Hq / Hkv)} (grouped-query attention;
 * multi-query when {@code Hkv == 1}). The scale {@code s} multiplies every dot product and
 * defaults to {@code 1 / sqrt(D)}. With {@code causal}, key {@code j} is allowed for query
 * {@code i} only if {@code j <= i + (Nk − Nq)}. Optional {@code keyLengths[b] <= Nk} removes keys
 * {@code j >= keyLengths[b]}; optional {@code queryLengths[b] <= Nq} makes rows
 * {@code i >= queryLengths[b]} produce {@code O = 0} and {@code LSE = −∞}.
 *
 * <p>Instances are immutable; the length arrays are copied in and out. All shape checking of
 * Starling lives here ({@link #checkInputs}, {@link #checkLayout}) so every backend refuses bad
 * input the same way, before anything is written.
 */
public final class AttentionProblem {
    private final int batch;
    private final int queryHeads;
    private final int kvHeads;
    private final int queryLength;
    private final int keyLength;
    private final int headDim;
    private final int valueDim;
    private final float scale;
    private final boolean scaleSet;
    private final boolean causal;
    private final Integer causalShift;
    private final int[] keyLengths;
    private final int[] queryLengths;
    private final Precision precision;

    private AttentionProblem(Builder b) {
        this.batch = b.batch;
        this.queryHeads = b.queryHeads;
        this.kvHeads = b.kvHeads == 0 ? b.queryHeads : b.kvHeads;
        this.queryLength = b.queryLength;
        this.keyLength = b.keyLength < 0 ? b.queryLength : b.keyLength;
        this.headDim = b.headDim;
        this.valueDim = b.valueDim == 0 ? b.headDim : b.valueDim;
        this.scaleSet = b.scaleSet;
        this.scale = b.scaleSet ? b.scale : (float) (1.0 / Math.sqrt(b.headDim));
        this.causal = b.causal;
        this.causalShift = b.causalShift;
        this.keyLengths = b.keyLengths == null ? null : b.keyLengths.clone();
        this.queryLengths = b.queryLengths == null ? null : b.queryLengths.clone();
        this.precision = b.precision;
        validate();
    }

    private void validate() {
        require(batch >= 1, "batch must be >= 1, got " + batch);
        require(queryHeads >= 1, "queryHeads must be >= 1, got " + queryHeads);
        require(kvHeads >= 1, "kvHeads must be >= 1, got " + kvHeads);
        require(queryHeads % kvHeads == 0,
                "queryHeads (" + queryHeads + ") must be a multiple of kvHeads (" + kvHeads + ")");
        require(queryLength >= 1, "queryLength must be >= 1, got " + queryLength);
        require(keyLength >= 1, "keyLength must be >= 1, got " + keyLength);
        require(headDim >= 1, "headDim must be >= 1, got " + headDim);
        require(valueDim >= 1, "valueDim must be >= 1, got " + valueDim);
        require(Float.isFinite(scale) && scale != 0, "scale must be a finite, non-zero number, got " + scale);
        Objects.requireNonNull(precision, "precision");
        checkLengths("keyLengths", keyLengths, keyLength, "keyLength");
        checkLengths("queryLengths", queryLengths, queryLength, "queryLength");
        checkSize("q or out", batch, queryHeads, queryLength, Math.max(headDim, valueDim));
        checkSize("k or v", batch, kvHeads, keyLength, Math.max(headDim, valueDim));
    }

    private void checkLengths(String name, int[] lengths, int max, String maxName) {
        if (lengths == null) {
            return;
        }
        require(lengths.length == batch, name + " has " + lengths.length + " entries but batch is " + batch);
        for (int b = 0; b < lengths.length; b++) {
            require(lengths[b] >= 0 && lengths[b] <= max,
                    name + "[" + b + "] = " + lengths[b] + " is outside [0, " + maxName + " = " + max + "]");
        }
    }

    /** Largest tensor Starling takes: a Java array of floats. */
    private static final long MAX_FLOATS = Integer.MAX_VALUE - 8;

    private static void checkSize(String what, int b, int h, int n, int d) {
        long floats;
        try {
            floats = Math.multiplyExact(Math.multiplyExact((long) b, h), Math.multiplyExact((long) n, d));
        } catch (ArithmeticException e) {
            floats = Long.MAX_VALUE;
        }
        require(floats <= MAX_FLOATS, what + " of this problem [" + b + ", " + h + ", " + n + ", " + d + "] would hold "
                + (floats == Long.MAX_VALUE ? "more than 2^63" : String.valueOf(floats))
                + " floats, more than a Java array (" + MAX_FLOATS + ")");
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** @return a new builder with no fields set */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * A builder holding this problem's values, to derive a variant. A scale that was never set
     * stays unset, so it follows a new head dim.
     *
     * @return the builder
     */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.batch = batch;
        b.queryHeads = queryHeads;
        b.kvHeads = kvHeads;
        b.queryLength = queryLength;
        b.keyLength = keyLength;
        b.headDim = headDim;
        b.valueDim = valueDim;
        b.scale = scale;
        b.scaleSet = scaleSet;
        b.causal = causal;
        b.causalShift = causalShift;
        b.keyLengths = keyLengths;
        b.queryLengths = queryLengths;
        b.precision = precision;
        return b;
    }

    /** @return {@code B} */
    public int batch() { return batch; }
    /** @return {@code Hq} */
    public int queryHeads() { return queryHeads; }
    /** @return {@code Hkv} */
    public int kvHeads() { return kvHeads; }
    /** @return {@code Nq} */
    public int queryLength() { return queryLength; }
    /** @return {@code Nk} */
    public int keyLength() { return keyLength; }
    /** @return {@code D}, the query/key feature dimension */
    public int headDim() { return headDim; }
    /** @return {@code Dv}, the value/output feature dimension */
    public int valueDim() { return valueDim; }
    /** @return the scale {@code s} applied to every dot product */
    public float scale() { return scale; }
    /** @return whether the scale was set explicitly (otherwise it is {@code 1/sqrt(D)}) */
    public boolean scaleSet() { return scaleSet; }
    /** @return whether the bottom-right aligned causal mask applies */
    public boolean causal() { return causal; }
    /**
     * @return {@code shift} of the causal rule {@code j <= i + shift}: {@code Nk − Nq} (aligned bottom-right)
     *         unless set, as a key shard does for keys that start inside a longer sequence
     */
    public long causalShift() {
        return causalShift != null ? causalShift : dev.starling.api.plan.TokenMask.bottomRightShift(queryLength, keyLength);
    }
    /** @return whether {@link #causalShift()} was set explicitly */
    public boolean hasCausalShift() { return causalShift != null; }
    /** @return the precision the caller asks for */
    public Precision precision() { return precision; }
    /** @return {@code Hq / Hkv}: query heads per key/value head */
    public int groupSize() { return queryHeads / kvHeads; }
    /** @return the key/value head that query head {@code h} reads */
    public int kvHeadOf(int h) { return h / groupSize(); }
    /**
     * The contract features this problem needs from a backend: {@link Feature#CAUSAL} when causal (and
     * {@link Feature#CAUSAL_SHIFT} when its shift is set explicitly), {@link Feature#GROUPED_QUERY} when
     * {@code Hq != Hkv}, {@link Feature#KEY_LENGTHS} and {@link Feature#QUERY_LENGTHS} when set.
     *
     * @return a new set
     */
    public java.util.EnumSet<Feature> features() {
        java.util.EnumSet<Feature> needed = java.util.EnumSet.noneOf(Feature.class);
        if (causal) {
            needed.add(Feature.CAUSAL);
            if (causalShift != null) {
                needed.add(Feature.CAUSAL_SHIFT);
            }
        }
        if (queryHeads != kvHeads) {
            needed.add(Feature.GROUPED_QUERY);
        }
        if (keyLengths != null) {
            needed.add(Feature.KEY_LENGTHS);
        }
        if (queryLengths != null) {
            needed.add(Feature.QUERY_LENGTHS);
        }
        return needed;
    }

    /** @return whether per-batch key lengths are set */
    public boolean hasKeyLengths() { return keyLengths != null; }
    /** @return whether per-batch query lengths are set */
    public boolean hasQueryLengths() { return queryLengths != null; }
    /** @return a copy of the per-batch key lengths, or {@code null} */
    public int[] keyLengths() { return keyLengths == null ? null : keyLengths.clone(); }
    /** @return a copy of the per-batch query lengths, or {@code null} */
    public int[] queryLengths() { return queryLengths == null ? null : queryLengths.clone(); }

    /** @return the number of valid keys of batch entry {@code b}: {@code keyLengths[b]} or {@code Nk} */
    public int keyLength(int b) {
        return keyLengths == null ? keyLength : keyLengths[b];
    }

    /** @return the number of valid query rows of batch entry {@code b}: {@code queryLengths[b]} or {@code Nq} */
    public int queryLength(int b) {
        return queryLengths == null ? queryLength : queryLengths[b];
    }

    /** @return number of floats of {@code LSE [B, Hq, Nq]} */
    public int lseSize() {
        return batch * queryHeads * queryLength;
    }

    /**
     * Checks every tensor of one {@code forward} call against this problem. Called by backends
     * before they write anything.
     *
     * @param q queries {@code [B, Hq, Nq, D]} in any layout. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]}
     * @param lse log-sum-exp output of {@code B·Hq·Nq} floats in {@code [B, Hq, Nq]} order, or {@code null}
     * @throws IllegalArgumentException naming the offending tensor and both shapes, or an output that shares its
     *         array with an input or with the other output
     */
    public void checkInputs(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        if (q == null || k == null || v == null || out == null) {
            throw new IllegalArgumentException("q, k, v and out must not be null (got q=" + q + ", k=" + k
                    + ", v=" + v + ", out=" + out + ")");
        }
        checkTensor("q", q, batch, queryHeads, queryLength, headDim);
        checkTensor("k", k, batch, kvHeads, keyLength, headDim);
        checkTensor("v", v, batch, kvHeads, keyLength, valueDim);
        checkTensor("out", out, batch, queryHeads, queryLength, valueDim);
        if (lse != null && lse.length != lseSize()) {
            throw new IllegalArgumentException("lse has " + lse.length + " floats but the problem needs [B, Hq, Nq] = "
                    + Arrays.toString(new int[] {batch, queryHeads, queryLength}) + " = " + lseSize());
        }
        checkOutput("out", out);
        Tensor[] inputs = {q, k, v};
        String[] names = {"q", "k", "v"};
        for (int i = 0; i < inputs.length; i++) {
            if (out.overlaps(inputs[i])) {
                throw new IllegalArgumentException("out must not share its array with an input: it overlaps " + names[i]
                        + " (inputs are never modified)");
            }
        }
        if (lse != null && (q.isStoredIn(lse) || k.isStoredIn(lse) || v.isStoredIn(lse) || out.isStoredIn(lse))) {
            throw new IllegalArgumentException("lse must not share its array with q, k, v or out"
                    + " (inputs are never modified, and the two outputs are written independently)");
        }
    }

    /**
     * Checks an LSE held as a tensor view ({@link AttentionPlan#forwardWithLse},
     * {@link AttentionPlan#backwardWithLse}), before anything is written: a float32 tensor of shape
     * {@code [B, Hq, Nq, 1]} (element {@code (b, h, i, 0)} is row {@code i}'s LSE), on the heap or in a
     * direct buffer, any strides; as an output it must be writable and not overlap itself.
     *
     * @param lse the view
     * @param output whether the call writes it (forward) or only reads it (backward)
     * @param others the call's other tensors with their names, alternating ({@code "q", q, "k", k, ...});
     *        the view may share storage with none of them
     * @throws IllegalArgumentException naming {@code lse} and both shapes, its element type, or the tensor it overlaps
     */
    public void checkLseView(Tensor lse, boolean output, Object... others) {
        if (lse == null) {
            throw new IllegalArgumentException("lse must not be null (a [B, Hq, Nq, 1] float32 view; use forward without "
                    + "an LSE to skip it)");
        }
        if (lse.batch() != batch || lse.heads() != queryHeads || lse.length() != queryLength || lse.dim() != 1) {
            throw new IllegalArgumentException("lse has shape " + Arrays.toString(lse.shape()) + " but the problem needs "
                    + "[B, Hq, Nq, 1] = " + Arrays.toString(new int[] {batch, queryHeads, queryLength, 1}));
        }
        if (lse.type() != ElementType.FP32) {
            throw new IllegalArgumentException("lse " + lse.describe() + " is " + lse.type().label()
                    + " but must be float32 (a 16-bit LSE would shift every weight of its row by up to its rounding)");
        }
        if (output) {
            checkOutput("lse", lse);
        }
        for (int i = 0; i + 1 < others.length; i += 2) {
            if (others[i + 1] instanceof Tensor t && lse.overlaps(t)) {
                throw new IllegalArgumentException("lse must not share its storage with " + others[i] + " (it overlaps "
                        + others[i] + " " + t.describe() + ")");
            }
        }
    }

    /**
     * The LSE view's values as the {@code B·Hq·Nq} floats in {@code [B, Hq, Nq]} order that
     * {@link #checkInputs} and {@link #checkGradients} take: the view's own array when it is a packed
     * heap {@code [B, Hq, Nq, 1]} tensor starting at element 0 (no copy), a new array otherwise.
     *
     * @param lse a view {@link #checkLseView} accepted
     * @param read whether to copy the view's values into a new array (backward); a forward's array
     *        needs none
     * @return the floats
     */
    public float[] lseArray(Tensor lse, boolean read) {
        if (lse.onHeap() && lse.type() == ElementType.FP32 && lse.start() == 0 && lse.isPacked()
                && lse.layout() == TensorLayout.BHSD && lse.data().length == lseSize()) {
            return lse.data();
        }
        float[] values = new float[lseSize()];
        if (read) {
            for (int b = 0, r = 0; b < batch; b++) {
                for (int h = 0; h < queryHeads; h++) {
                    for (int i = 0; i < queryLength; i++, r++) {
                        values[r] = lse.read(lse.index(b, h, i, 0));
                    }
                }
            }
        }
        return values;
    }

    /**
     * Writes LSE values in {@code [B, Hq, Nq]} order into the view they were staged for; nothing when
     * {@code values} is the view's own array.
     *
     * @param values {@code B·Hq·Nq} floats from {@link #lseArray}
     * @param lse the view
     */
    public void writeLse(float[] values, Tensor lse) {
        if (lse.onHeap() && lse.type() == ElementType.FP32 && lse.data() == values) {
            return;
        }
        for (int b = 0, r = 0; b < batch; b++) {
            for (int h = 0; h < queryHeads; h++) {
                for (int i = 0; i < queryLength; i++, r++) {
                    lse.write(lse.index(b, h, i, 0), values[r]);
                }
            }
        }
    }

    /** An output must be writable and must not hold two of its elements at one storage index. */
    private static void checkOutput(String name, Tensor t) {
        if (!t.writable()) {
            throw new IllegalArgumentException(name + " " + t.describe() + " is a read-only buffer");
        }
        if (!t.isNonOverlapping()) {
            throw new IllegalArgumentException(name + " " + t.describe() + " overlaps itself (two of its elements share "
                    + "one storage index), so it cannot be written");
        }
    }

    /**
     * Checks every tensor of one {@code backward} call against this problem, before anything is
     * written: the forward tensors as {@link #checkInputs} does, {@code lse} present, {@code dOut}
     * shaped as {@code out}, and each gradient shaped as its input; no gradient shares its array with
     * any input or with another gradient.
     *
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param out the forward output. Not modified.
     * @param lse the forward LSE, {@code B·Hq·Nq} floats. Not modified.
     * @param dOut gradient of the output. Not modified.
     * @param dq gradient of q
     * @param dk gradient of k
     * @param dv gradient of v
     * @throws IllegalArgumentException naming the offending tensor and both shapes, or the aliasing
     */
    public void checkGradients(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk,
                               Tensor dv) {
        if (q == null || k == null || v == null || out == null) {
            throw new IllegalArgumentException("q, k, v and out must not be null (got q=" + q + ", k=" + k
                    + ", v=" + v + ", out=" + out + ")");
        }
        if (lse == null || dOut == null || dq == null || dk == null || dv == null) {
            throw new IllegalArgumentException("backward needs lse, dOut, dq, dk and dv (got lse="
                    + (lse == null ? "null" : lse.length + " floats") + ", dOut=" + dOut + ", dq=" + dq + ", dk=" + dk
                    + ", dv=" + dv + ")");
        }
        checkTensor("q", q, batch, queryHeads, queryLength, headDim);
        checkTensor("k", k, batch, kvHeads, keyLength, headDim);
        checkTensor("v", v, batch, kvHeads, keyLength, valueDim);
        checkTensor("out", out, batch, queryHeads, queryLength, valueDim);
        checkTensor("dOut", dOut, batch, queryHeads, queryLength, valueDim);
        checkTensor("dq", dq, batch, queryHeads, queryLength, headDim);
        checkTensor("dk", dk, batch, kvHeads, keyLength, headDim);
        checkTensor("dv", dv, batch, kvHeads, keyLength, valueDim);
        if (lse.length != lseSize()) {
            throw new IllegalArgumentException("lse has " + lse.length + " floats but the problem needs [B, Hq, Nq] = "
                    + Arrays.toString(new int[] {batch, queryHeads, queryLength}) + " = " + lseSize());
        }
        Tensor[] inputs = {q, k, v, out, dOut};
        String[] inputNames = {"q", "k", "v", "out", "dOut"};
        Tensor[] grads = {dq, dk, dv};
        String[] gradNames = {"dq", "dk", "dv"};
        for (int g = 0; g < grads.length; g++) {
            checkOutput(gradNames[g], grads[g]);
            if (grads[g].isStoredIn(lse)) {
                throw new IllegalArgumentException(gradNames[g] + " must not share its array with lse"
                        + " (inputs are never modified)");
            }
            for (int i = 0; i < inputs.length; i++) {
                if (grads[g].overlaps(inputs[i])) {
                    throw new IllegalArgumentException(gradNames[g] + " must not share its array with " + inputNames[i]
                            + " (inputs are never modified)");
                }
            }
            for (int o = 0; o < g; o++) {
                if (grads[g].overlaps(grads[o])) {
                    throw new IllegalArgumentException(gradNames[g] + " must not share its array with " + gradNames[o]
                            + " (they overlap)");
                }
            }
        }
    }

    private void checkTensor(String name, Tensor t, int b, int h, int n, int d) {
        if (t.batch() == b && t.heads() == h && t.length() == n && t.dim() == d) {
            return;
        }
        String expected = Tensor.describe(t.layout(), b, h, n, d);
        String why;
        if (t.batch() != b) {
            why = "batch " + b;
        } else if (t.heads() != h) {
            why = (name.matches("d?[kv]") ? "kvHeads " : "queryHeads ") + h;
        } else if (t.length() != n) {
            why = (name.matches("d?[kv]") ? "keyLength " : "queryLength ") + n;
        } else {
            why = (name.matches("d?v|out|dOut") ? "value dim " : "head dim ") + d;
        }
        throw new IllegalArgumentException(name + " is " + t.describe() + " but the problem expects " + expected
                + " (" + why + ")");
    }

    /**
     * Checks that a block layout was built for this problem's lengths and heads.
     *
     * @param layout the layout. Not modified.
     * @throws IllegalArgumentException if the layout's lengths or head count differ
     */
    public void checkLayout(BlockLayout layout) {
        if (layout == null) {
            throw new IllegalArgumentException("layout must not be null");
        }
        if (layout.queryLength() != queryLength || layout.keyLength() != keyLength) {
            throw new IllegalArgumentException("layout was built for Nq=" + layout.queryLength() + ", Nk="
                    + layout.keyLength() + " but the problem has Nq=" + queryLength + ", Nk=" + keyLength);
        }
        if (!layout.isShared() && layout.heads() != queryHeads) {
            throw new IllegalArgumentException("layout has " + layout.heads() + " per-head layouts but the problem has "
                    + queryHeads + " query heads");
        }
        if (layout.drawnForHeads() != 0 && layout.drawnForHeads() != queryHeads) {
            throw new IllegalArgumentException("layout was drawn for " + layout.drawnForHeads() + " query head(s) but the "
                    + "problem has " + queryHeads + "; its random blocks differ per head, so draw it for " + queryHeads
                    + " (Starling.layout(problem, pattern))");
        }
    }

    @Override
    public String toString() {
        return "AttentionProblem[B=" + batch + ", Hq=" + queryHeads + ", Hkv=" + kvHeads + ", Nq=" + queryLength
                + ", Nk=" + keyLength + ", D=" + headDim + ", Dv=" + valueDim + ", scale=" + scale
                + (causal ? ", causal" : "") + (causalShift != null ? ", causalShift=" + causalShift : "")
                + (keyLengths != null ? ", keyLengths=" + Arrays.toString(keyLengths) : "")
                + (queryLengths != null ? ", queryLengths=" + Arrays.toString(queryLengths) : "")
                + ", " + precision + "]";
    }

    /** Builds an {@link AttentionProblem}; unset optional fields take the documented defaults. */
    public static final class Builder {
        private int batch = 1;
        private int queryHeads;
        private int kvHeads;
        private int queryLength;
        private int keyLength = -1;
        private int headDim;
        private int valueDim;
        private float scale;
        private boolean scaleSet;
        private boolean causal;
        private Integer causalShift;
        private int[] keyLengths;
        private int[] queryLengths;
        private Precision precision = Precision.FP32;

        private Builder() {
        }

        /** @param batch {@code B} (default 1) @return this */
        public Builder batch(int batch) { this.batch = batch; return this; }
        /** @param heads {@code Hq}, and {@code Hkv} unless set separately @return this */
        public Builder heads(int heads) { this.queryHeads = heads; return this; }
        /** @param kvHeads {@code Hkv} (default {@code Hq}) @return this */
        public Builder kvHeads(int kvHeads) { this.kvHeads = kvHeads; return this; }
        /** @param length {@code Nq}, and {@code Nk} unless set separately @return this */
        public Builder queryLength(int length) { this.queryLength = length; return this; }
        /** @param length {@code Nk} (default {@code Nq}) @return this */
        public Builder keyLength(int length) { this.keyLength = length; return this; }
        /** @param length both {@code Nq} and {@code Nk} @return this */
        public Builder length(int length) { this.queryLength = length; this.keyLength = length; return this; }
        /** @param dim {@code D}, and {@code Dv} unless set separately @return this */
        public Builder headDim(int dim) { this.headDim = dim; return this; }
        /** @param dim {@code Dv} (default {@code D}) @return this */
        public Builder valueDim(int dim) { this.valueDim = dim; return this; }
        /**
         * @param scale the score scale (default {@code 1/sqrt(D)}); {@code build()} refuses NaN, infinities and
         *              zero. A negative scale is allowed: it flips every score (the conformance kit uses one to
         *              make huge negative logits)
         * @return this
         */
        public Builder scale(float scale) { this.scale = scale; this.scaleSet = true; return this; }
        /** @param causal whether the causal mask applies @return this */
        public Builder causal(boolean causal) { this.causal = causal; return this; }
        /**
         * @param shift with causal, key {@code j} is allowed for query {@code i} when {@code j <= i + shift}
         *              (default {@code Nk − Nq}); a key shard holding keys {@code [start, start + Nk')} of a
         *              sequence of {@code Nk} keys uses {@code Nk − Nq − start}
         * @return this
         */
        public Builder causalShift(int shift) { this.causalShift = shift; return this; }
        /** @param lengths per-batch key lengths or {@code null}. Copied. @return this */
        public Builder keyLengths(int... lengths) { this.keyLengths = lengths == null ? null : lengths.clone(); return this; }
        /** @param lengths per-batch query lengths or {@code null}. Copied. @return this */
        public Builder queryLengths(int... lengths) { this.queryLengths = lengths == null ? null : lengths.clone(); return this; }
        /** @param precision arithmetic asked for (default FP32) @return this */
        public Builder precision(Precision precision) { this.precision = precision; return this; }

        /**
         * @return the validated problem
         * @throws IllegalArgumentException naming the first inconsistent field
         */
        public AttentionProblem build() {
            return new AttentionProblem(this);
        }
    }
}
