package dev.starling.backend.nd4j;

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
 * Block-sparse attention on ND4J ({@code nd4j-native-platform} 1.0.0-M2.1 by default): for a
 * group of query blocks, their allowed key and value blocks are gathered, scores come from one
 * batched matrix product, token-level masks (causal, lengths, tails) are added, a stable softmax
 * and a second batched product with the values follow, and the rows are scattered back. Every
 * feature of DESIGN section 2, float32.
 *
 * <p>The constructor does nothing; {@link #availability()} loads ND4J once and turns any native
 * failure into a reason. When OpenBLAS picked an older core than the CPU supports it logs one
 * warning naming the fix ({@code OPENBLAS_CORETYPE}, set before the JVM starts).
 */
public final class Nd4jBackend implements SparseAttention {
    /** Selection priority: between the reference backend and cuda. */
    public static final int PRIORITY = 50;

    /** Does no work; ND4J loads on first use. */
    public Nd4jBackend() {
    }

    @Override
    public String name() {
        return "nd4j";
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability availability() {
        return Nd4jRuntime.availability();
    }

    @Override
    public Capabilities capabilities() {
        Availability a = availability();
        // Rows are gathered through offset() and read in place off-heap, so strided views and an
        // INDArray's own memory go in without a copy; 16-bit views are widened by the api. Block counts
        // are the additive mask's ln c.
        return Capabilities.full(a.isAvailable() ? Nd4jRuntime.describe() : "ND4J (unavailable)",
                EnumSet.of(Precision.FP32)).toBuilder().features(Feature.STRIDED_TENSORS, Feature.OFF_HEAP_TENSORS, Feature.BLOCK_COUNTS).build();
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        checkPlan(problem, layout);
        if (!availability().isAvailable()) {
            throw new IllegalStateException("nd4j backend is " + availability());
        }
        Nd4jRuntime.warnOnce();
        return new Nd4jPlan(this, problem, layout);
    }
}
