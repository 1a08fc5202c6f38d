package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import org.junit.jupiter.api.Test;

/**
 * Bit-identical results whether the kernel runs interpreted, in C1 or in C2: the kernel uses only
 * operations Java defines exactly (fused multiply-add, add, multiply, compare, blend, bit
 * reinterpretation). The Vector API's lane-wise {@code EXP} is not one of them: its intrinsic and
 * its Java fallback differ in the last bit, so a plan's first call (cold) and a later one (hot)
 * would differ — conformance rule 11 then fails depending on what ran before it.
 */
class VectorDeterminismTest {

    @Test
    void coldAndHotCallsAgreeBitForBit() {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(2).length(320).headDim(40).valueDim(24)
                .causal(true).build();
        AttentionCase c = AttentionCase.random("determinism", 11, p,
                Patterns.parse("bigbird(block=32, window=3, global=2, random=1, seed=0)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        // A kernel shape no other test uses (D = 40, Dv = 24, 32-row blocks) is still cold here.
        try (AttentionPlan plan = VectorBackend.withThreads(1).plan(p, c.layout())) {
            Tensor first = c.newOutput();
            float[] firstLse = c.newLse();
            plan.forward(c.q(), c.k(), c.v(), first, firstLse);
            Tensor later = c.newOutput();
            float[] laterLse = c.newLse();
            for (int call = 0; call < 400; call++) {
                plan.forward(c.q(), c.k(), c.v(), later, laterLse);
            }
            for (int x = 0; x < first.data().length; x++) {
                assertEquals(Float.floatToRawIntBits(first.data()[x]), Float.floatToRawIntBits(later.data()[x]),
                        "output at flat index " + x + ": " + first.data()[x] + " cold vs " + later.data()[x] + " hot");
            }
            for (int x = 0; x < firstLse.length; x++) {
                assertEquals(Float.floatToRawIntBits(firstLse[x]), Float.floatToRawIntBits(laterLse[x]), "lse at " + x);
            }
        }
    }
}
