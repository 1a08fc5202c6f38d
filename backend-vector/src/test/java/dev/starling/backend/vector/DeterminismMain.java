package dev.starling.backend.vector;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;

/**
 * The fixed case of {@link VectorDeterminismTest}: prints the bits of its output and LSE, then of
 * its gradients {@code dq}, {@code dk}, {@code dv}, one hex word per value, so a JVM running interpreted ({@code -Xint}) can be compared with a JIT-compiled one.
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

    /** @return the bits of the output, LSE and gradients after the calls, as hex words */
    static String run(int calls) {
        AttentionCase c = fixedCase();
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        AttentionProblem p = c.problem();
        Tensor dOut = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
        java.util.Random rnd = new java.util.Random(12);
        for (int i = 0; i < dOut.data().length; i++) {
            dOut.data()[i] = (float) rnd.nextGaussian();
        }
        Tensor dq = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), p.queryLength(), p.headDim());
        Tensor dk = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), p.keyLength(), p.headDim());
        Tensor dv = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), p.keyLength(), p.valueDim());
        try (AttentionPlan plan = VectorBackend.withThreads(1).plan(c.problem(), c.layout())) {
            for (int call = 0; call < calls; call++) {
                plan.forward(c.q(), c.k(), c.v(), out, lse);
            }
            // The backward pass, a tenth as often (it is the slower one interpreted).
            for (int call = 0; call < Math.max(1, calls / 10); call++) {
                plan.backward(c.q(), c.k(), c.v(), out, lse, dOut, dq, dk, dv);
            }
        }
        StringBuilder sb = new StringBuilder();
        for (float[] values : new float[][] {out.data(), lse, dq.data(), dk.data(), dv.data()}) {
            for (float x : values) {
                sb.append(Integer.toHexString(Float.floatToRawIntBits(x))).append(' ');
            }
        }
        return sb.toString().strip();
    }

    public static void main(String[] args) {
        System.out.println(run(1));
    }
}
