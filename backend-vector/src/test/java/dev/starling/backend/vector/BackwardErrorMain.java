package dev.starling.backend.vector;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.GradientOracle;
import java.util.Random;

/**
 * Measures the vector backward pass's float32 error against float64 gradients on random normal
 * inputs (for setting the fp32 gradient tolerance): per tensor the largest absolute error, that error
 * over the reference's largest magnitude, and the largest {@code |err| / (atol + rtol·|ref|)} for
 * the fp32 row's {@code atol 1e-4, rtol 5e-4} as a plain bound. Up to {@code denseLimit} tokens the reference
 * is {@link GradientOracle} (dense); above it, {@link ReadKeysOracle} (the same formulas over the
 * allowed keys only). Arguments: {@code N… } (default {@code 1024 4096 16384}); system property
 * {@code heads} (default 8).
 */
public final class BackwardErrorMain {
    private BackwardErrorMain() {
    }

    public static void main(String[] args) {
        int[] lengths = args.length == 0 ? new int[] {1024, 4096, 16384} : java.util.Arrays.stream(args)
                .mapToInt(Integer::parseInt).toArray();
        int heads = Integer.getInteger("heads", 8);
        int denseLimit = Integer.getInteger("denseLimit", 4096);
        for (int n : lengths) {
            for (boolean causal : new boolean[] {false, true}) {
                AttentionProblem p = AttentionProblem.builder().heads(heads).length(n).headDim(64).causal(causal).build();
                AttentionCase c = AttentionCase.random("error", n, p,
                        Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=0)"), TensorLayout.BHSD,
                        AttentionCase.Values.NORMAL);
                Tensor g = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, 64);
                Random rnd = new Random(n + 1);
                for (int i = 0; i < g.data().length; i++) {
                    g.data()[i] = (float) rnd.nextGaussian();
                }
                Tensor out = c.newOutput();
                float[] lse = c.newLse();
                Tensor dq = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, 64);
                Tensor dk = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, 64);
                Tensor dv = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, 64);
                try (AttentionPlan plan = new VectorBackend().plan(p, c.layout())) {
                    plan.forward(c.q(), c.k(), c.v(), out, lse);
                    plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq, dk, dv);
                }
                boolean dense = n <= denseLimit;
                GradientOracle.Result want = dense ? GradientOracle.compute(p, c.layout(), c.q(), c.k(), c.v(), g)
                        : ReadKeysOracle.compute(p, c.layout(), c.q(), c.k(), c.v(), g);
                System.out.printf("N %d H %d D 64 bigbird%s, against %s:%n", n, heads, causal ? " causal" : "",
                        dense ? "GradientOracle" : "ReadKeysOracle (sparse float64)");
                report("dq", want.dq(), dq);
                report("dk", want.dk(), dk);
                report("dv", want.dv(), dv);
            }
        }
    }

    private static void report(String name, double[] want, Tensor got) {
        float[] x = got.data();
        double maxRef = 0;
        double maxAbs = 0;
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(want[i]));
            double diff = Math.abs(x[i] - want[i]);
            maxAbs = Math.max(maxAbs, diff);
            worst = Math.max(worst, diff / (GradientCheck.ATOL + GradientCheck.RTOL * Math.abs(want[i])));
        }
        System.out.printf("  %s: max|ref| %.3g, max abs error %.3g, max abs error / max|ref| %.3g, worst error / tolerance %.4f%n",
                name, maxRef, maxAbs, maxAbs / maxRef, worst);
    }
}
