package dev.starling.backend.vector;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;

/**
 * The fixed case of {@link VectorDeterminismTest}: prints the bits of its output and LSE, one hex
 * word per value, so a JVM running interpreted ({@code -Xint}) can be compared with a JIT-compiled one.
 */
public final class DeterminismMain {
    private DeterminismMain() {
    }

    /** @return the case: causal BigBird, Nq 300, Nk 291 (partial tail blocks), D = 20, Dv = 12, 32-row blocks */
    static AttentionCase fixedCase() {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(2).queryLength(300).keyLength(291).headDim(20)
                .valueDim(12).causal(true).build();
        return AttentionCase.random("determinism", 11, p,
                Patterns.parse("bigbird(block=32, window=3, global=1, random=1, seed=0)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
    }

    /** @return the bits of one forward call's output then LSE, as hex words */
    static String run(int calls) {
        AttentionCase c = fixedCase();
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        try (AttentionPlan plan = VectorBackend.withThreads(1).plan(c.problem(), c.layout())) {
            for (int call = 0; call < calls; call++) {
                plan.forward(c.q(), c.k(), c.v(), out, lse);
            }
        }
        StringBuilder sb = new StringBuilder();
        for (float x : out.data()) {
            sb.append(Integer.toHexString(Float.floatToRawIntBits(x))).append(' ');
        }
        for (float x : lse) {
            sb.append(Integer.toHexString(Float.floatToRawIntBits(x))).append(' ');
        }
        return sb.toString().strip();
    }

    public static void main(String[] args) {
        System.out.println(run(1));
    }
}
