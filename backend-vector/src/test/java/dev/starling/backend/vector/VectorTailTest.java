package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.Tolerance;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The vector bodies' scalar and masked tails against the float64 oracle: head dims and value dims
 * that are not multiples of the lane count, block sizes that are not either, partial tail blocks,
 * causal diagonals, split rows, blocks walked in chunks, one thread and several.
 */
class VectorTailTest {
    private static final long SEED = 20261201L;

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> s = Stream.builder();
        int[] dims = {1, 3, 15, 17, 63, 65, 127};
        int[] blocks = {5, 7, 20, 33};
        for (int i = 0; i < dims.length; i++) {
            int d = dims[i];
            int block = blocks[i % blocks.length];
            // D = Dv, then Dv from the other end of the list (Dv != D, values packed or read in place).
            s.add(Arguments.of(d, d, block, false));
            s.add(Arguments.of(d, dims[dims.length - 1 - i], block + 11, true));
        }
        s.add(Arguments.of(64, 64, 16, true));
        s.add(Arguments.of(64, 32, 64, false));
        s.add(Arguments.of(32, 48, 24, true));
        s.add(Arguments.of(3, 2, 1, true));
        // Blocks larger than the kernel's chunk of rows and keys (VectorPlan.CHUNK).
        s.add(Arguments.of(8, 8, 200, true));
        s.add(Arguments.of(5, 9, 300, false));
        return s.build();
    }

    @ParameterizedTest(name = "D={0} Dv={1} block={2} causal={3}")
    @MethodSource("shapes")
    void matchesTheOracle(int dim, int vdim, int block, boolean causal) {
        for (int threads : new int[] {1, 3}) {
            for (String pattern : new String[] {"bigbird(block=" + block + ", window=3, global=2, random=2, seed=5)",
                    "dense(block=" + block + ")"}) {
                AttentionProblem p = AttentionProblem.builder().batch(2).heads(2).kvHeads(1).queryLength(3 * block + 4)
                        .keyLength(4 * block - 3).headDim(dim).valueDim(vdim).causal(causal).build();
                check(p, pattern, TensorLayout.BHSD, threads);
                check(p, pattern, TensorLayout.BSHD, threads);
            }
        }
    }

    /** Many threads over one head: global rows are split into parts merged exactly (WorkPlan slots). */
    @ParameterizedTest(name = "causal={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void splitRowsMatchTheOracle(boolean causal) {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(1).queryLength(403).keyLength(397).headDim(24)
                .valueDim(20).causal(causal).build();
        String pattern = "bigbird(block=8, window=3, global=2, random=2, seed=9)";
        assertTrue(VectorPlan.maxBlocksPerUnit(Patterns.parse(pattern).layout(403, 397, 1), 1, 1, 16) < 50,
                "the case must split the global rows");
        check(p, pattern, TensorLayout.BSHD, 16);
    }

    /** Scale 1 with D = 64: scores spread over about ±30, so the kernel's exp runs over e^−60 .. 1. */
    @org.junit.jupiter.api.Test
    void wideScoresMatchTheOracle() {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(2).length(256).headDim(64).scale(1f).build();
        check(p, "bigbird(block=64, window=3, global=1, random=1, seed=2)", TensorLayout.BHSD, 2);
        check(p.toBuilder().scale(4f).build(), "dense(block=32)", TensorLayout.BHSD, 2);
    }

    private static void check(AttentionProblem p, String pattern, TensorLayout tensors, int threads) {
        AttentionCase c = AttentionCase.random("tail", SEED, p, Patterns.parse(pattern), tensors,
                AttentionCase.Values.NORMAL);
        Tensor out = c.newOutput();
        java.util.Arrays.fill(out.data(), Float.NaN);
        float[] lse = c.newLse();
        try (AttentionPlan plan = VectorBackend.withThreads(threads).plan(p, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
        }
        Comparison.Outcome o = Comparison.compare(p, c.expected(), out, lse, Tolerance.FP32);
        assertTrue(o.ok(), c + " with " + threads + " threads: " + o.message());
    }
}
