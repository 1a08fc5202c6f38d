package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BigBirdPattern;
import dev.starling.api.pattern.BlockLayout;

/**
 * Child-JVM entry point of rule 19: runs BigBird (block 64, window 3, global 2, random 3) over
 * {@value #TOKENS} tokens, batch 1, 8 heads, head dim 64, in whatever heap the JVM was given
 * ({@link ConformanceRules#MEMORY_RULE_HEAP}). The four tensors alone take 512 MB, so a backend
 * that allocates anything of size {@code Nq × Nk} (16 GB here) cannot pass. Exits 0 when the
 * output is right (every value row has feature 0 equal to 1, so every output row does too).
 */
public final class LinearMemoryProbe {
    /** Sequence length of the probe. */
    public static final int TOKENS = 65_536;

    private LinearMemoryProbe() {
    }

    /**
     * @param args the backend class name (public no-argument constructor, as the SPI requires)
     * @throws Exception on any failure, which makes the JVM exit non-zero
     */
    public static void main(String[] args) throws Exception {
        SparseAttention backend = (SparseAttention) Class.forName(args[0]).getConstructor().newInstance();
        int n = TOKENS;
        AttentionProblem p = AttentionProblem.builder().heads(8).length(n).headDim(64).build();
        BlockLayout layout = Starling.layout(p, BigBirdPattern.defaults());
        Tensor q = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        Tensor k = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        Tensor v = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        for (int i = 0; i < v.data().length; i += 64) {
            v.data()[i] = 1f;
            q.data()[i] = (i % 7) * 0.1f;
            k.data()[i] = (i % 5) * 0.1f;
        }
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        long t0 = System.nanoTime();
        try (AttentionPlan plan = backend.plan(p, layout)) {
            plan.forward(q, k, v, out);
        }
        for (int i = 0; i < out.data().length; i += 64) {
            if (Math.abs(out.data()[i] - 1f) > 1e-3f) {
                System.out.println("wrong output at flat index " + i + ": " + out.data()[i] + " (expected 1)");
                System.exit(1);
            }
        }
        System.out.printf("ok: %d tokens in %.1f s, max heap %d MB%n", n, (System.nanoTime() - t0) / 1e9,
                Runtime.getRuntime().maxMemory() >> 20);
    }
}
