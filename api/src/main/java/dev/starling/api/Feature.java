package dev.starling.api;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * Everything a backend may or may not do, named once. A backend declares its features in its
 * {@link Capabilities}; a problem, a layout and a call report the features they need
 * ({@link AttentionProblem#features()}, {@link Capabilities#needs}); selection, the conformance
 * kit's skips and every "cannot run this" message are the set difference of the two, spelled with
 * these constant names (the conformance kit's {@code RULES.md} uses them too, and a test checks it).
 *
 * <p>There are two kinds:
 * <ul>
 *   <li><b>contract features</b> ({@link #isContract()}): parts of DESIGN section 2 a problem may
 *       need. A backend that lacks one is never selected for a problem that needs it, and its plan
 *       refuses such a problem with {@link UnsupportedOperationException} naming the feature;</li>
 *   <li><b>tensor features</b>: kinds of tensor a backend reads or writes natively (16-bit element
 *       types, off-heap storage, arbitrary strides). They never decide selection: for a backend that
 *       lacks one, the API converts such a tensor to a packed float32 heap copy once per call (and
 *       converts the results back), so the results are the same; declaring one only saves the copy.</li>
 * </ul>
 */
public enum Feature {
    /** The bottom-right aligned causal mask ({@link AttentionProblem#causal()}). */
    CAUSAL(true, "causal"),
    /** A causal rule moved by an explicit {@link AttentionProblem#causalShift()} (key shards need it). */
    CAUSAL_SHIFT(true, "causal-shift"),
    /** {@code Hq != Hkv}: grouped-query and multi-query attention. */
    GROUPED_QUERY(true, "gqa"),
    /** Per-batch key lengths. */
    KEY_LENGTHS(true, "key-lengths"),
    /** Per-batch query lengths. */
    QUERY_LENGTHS(true, "query-lengths"),
    /** The log-sum-exp output. */
    LSE(true, "lse"),
    /** Gradients through {@link AttentionPlan#backward}. */
    BACKWARD(true, "backward"),
    /**
     * Layout entries that count a key block {@code c > 1} times in the softmax
     * ({@link dev.starling.api.pattern.BlockLayout#hasCounts()}; DESIGN section 2).
     */
    BLOCK_COUNTS(true, "block-counts"),
    /**
     * Reads and writes any {@link Tensor} view whose feature stride is 1 through
     * {@link Tensor#offset(int, int, int)} and {@link Tensor#rowStride()} (strided views such as q, k
     * and v of a fused projection), instead of only packed BHSD or BSHD arrays.
     */
    STRIDED_TENSORS(false, "strided"),
    /** Reads and writes {@code BF16} tensors itself. */
    BF16_TENSORS(false, "bf16-tensors"),
    /** Reads and writes {@code FP16} tensors itself. */
    FP16_TENSORS(false, "fp16-tensors"),
    /** Reads and writes tensors stored in direct {@link java.nio.ByteBuffer}s (off-heap) itself. */
    OFF_HEAP_TENSORS(false, "off-heap");

    private final boolean contract;
    private final String label;

    Feature(boolean contract, String label) {
        this.contract = contract;
        this.label = label;
    }

    /** @return whether a problem can need this feature (selection and plans refuse backends that lack it) */
    public boolean isContract() {
        return contract;
    }

    /** @return the short lowercase label {@code starling backends} prints, e.g. {@code gqa} */
    public String label() {
        return label;
    }

    /** @return every contract feature */
    public static Set<Feature> contract() {
        EnumSet<Feature> out = EnumSet.noneOf(Feature.class);
        for (Feature f : values()) {
            if (f.contract) {
                out.add(f);
            }
        }
        return out;
    }

    /**
     * The feature a name spells: its constant name or its label, in any case.
     *
     * @param name e.g. {@code "GROUPED_QUERY"} or {@code "gqa"}
     * @return the feature
     * @throws IllegalArgumentException listing the names when none matches
     */
    public static Feature parse(String name) {
        String s = name == null ? "" : name.strip();
        for (Feature f : values()) {
            if (f.name().equalsIgnoreCase(s) || f.label.equalsIgnoreCase(s)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unknown feature '" + name + "'; features are "
                + EnumSet.allOf(Feature.class).toString().toUpperCase(Locale.ROOT));
    }
}
