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
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * DESIGN section 2's non-finite policy element by element through every masked path of the kernel
 * (causal diagonals, partial tail blocks, key lengths, row vectors and value features that do not
 * fill a register tile): a few NaN, +∞ or −∞ values in one input, compared with the float64 oracle,
 * which must agree on where every NaN and infinity lands.
 */
class VectorNonFiniteTest {

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> s = Stream.builder();
        int[][] shapes = {{17, 33, 20}, {64, 64, 64}, {3, 5, 7}, {32, 16, 48}};
        String[] inputs = {"q", "k", "v"};
        float[] values = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int[] shape : shapes) {
            for (String input : inputs) {
                for (float value : values) {
                    s.add(Arguments.of(shape[0], shape[1], shape[2], input, value));
                }
            }
        }
        return s.build();
    }

    @ParameterizedTest(name = "D={0} Dv={1} block={2}: {4} in {3}")
    @MethodSource("cases")
    void nonFiniteValuesLandWhereTheOracleSays(int dim, int vdim, int block, String input, float value) {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(2).kvHeads(2).queryLength(3 * block + 5)
                .keyLength(3 * block + 2).headDim(dim).valueDim(vdim).causal(true).keyLengths(3 * block + 2, 2 * block + 1)
                .build();
        AttentionCase c = AttentionCase.random("non-finite", 99, p,
                Patterns.parse("bigbird(block=" + block + ", window=3, global=1, random=1, seed=3)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        Tensor target = switch (input) {
            case "q" -> c.q();
            case "k" -> c.k();
            default -> c.v();
        };
        Random rnd = new Random(7);
        for (int x = 0; x < 6; x++) {
            target.data()[rnd.nextInt(target.data().length)] = value;
        }
        for (int threads : new int[] {1, 2}) {
            Tensor out = c.newOutput();
            float[] lse = c.newLse();
            try (AttentionPlan plan = VectorBackend.withThreads(threads).plan(p, c.layout())) {
                plan.forward(c.q(), c.k(), c.v(), out, lse);
            }
            Comparison.Outcome o = Comparison.compare(p, c.expected(), out, lse, Tolerance.FP32);
            assertTrue(o.ok(), c + ", " + value + " in " + input + ", " + threads + " threads: " + o.message());
        }
    }
}
