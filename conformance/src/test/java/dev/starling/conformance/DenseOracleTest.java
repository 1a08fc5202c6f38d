package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import org.junit.jupiter.api.Test;

/** The oracle on cases small enough to compute by hand. */
class DenseOracleTest {

    @Test
    void twoKeysByHand() {
        // q = [1, 0], k0 = [1, 0], k1 = [0, 1], scale 1: scores 1 and 0.
        AttentionProblem p = AttentionProblem.builder().heads(1).queryLength(1).keyLength(2).headDim(2).valueDim(1)
                .scale(1f).build();
        BlockLayout dense = Patterns.parse("dense(block=2)").layout(1, 2, 1);
        DenseOracle.Result r = DenseOracle.compute(p, dense, Tensor.bhsd(new float[] {1, 0}, 1, 1, 1, 2),
                Tensor.bhsd(new float[] {1, 0, 0, 1}, 1, 1, 2, 2), Tensor.bhsd(new float[] {10, 20}, 1, 1, 2, 1));
        double e = Math.E;
        assertEquals((10 * e + 20) / (e + 1), r.out()[0], 1e-12);
        assertEquals(Math.log(e + 1), r.lse()[0], 1e-12);
    }

    @Test
    void causalLengthsAndEmptyRowsByHand() {
        // Nq = 3, Nk = 2, causal: shift = -1, row 0 sees nothing, row 1 sees key 0, row 2 keys 0..1.
        AttentionProblem p = AttentionProblem.builder().heads(1).queryLength(3).keyLength(2).headDim(1).valueDim(1)
                .scale(1f).causal(true).build();
        BlockLayout dense = Patterns.parse("dense(block=4)").layout(3, 2, 1);
        Tensor q = Tensor.bhsd(new float[] {0, 0, 0}, 1, 1, 3, 1);
        Tensor k = Tensor.bhsd(new float[] {0, 0}, 1, 1, 2, 1);
        Tensor v = Tensor.bhsd(new float[] {3, 5}, 1, 1, 2, 1);
        DenseOracle.Result r = DenseOracle.compute(p, dense, q, k, v);
        assertEquals(0.0, r.out()[0]);
        assertEquals(Double.NEGATIVE_INFINITY, r.lse()[0]);
        assertEquals(3.0, r.out()[1], 1e-12);
        assertEquals(0.0, r.lse()[1], 1e-12);
        assertEquals(4.0, r.out()[2], 1e-12);
        assertEquals(Math.log(2), r.lse()[2], 1e-12);

        AttentionProblem padded = p.toBuilder().causal(false).keyLengths(1).build();
        DenseOracle.Result r2 = DenseOracle.compute(padded, dense, q, k, v);
        for (int i = 0; i < 3; i++) {
            assertEquals(3.0, r2.out()[i], 1e-12, "only key 0 is valid");
        }
    }

    @Test
    void hugeLogitsAndNanByHand() {
        AttentionProblem p = AttentionProblem.builder().heads(1).queryLength(1).keyLength(2).headDim(1).valueDim(1)
                .scale(1024f).build();
        BlockLayout dense = Patterns.parse("dense(block=2)").layout(1, 2, 1);
        Tensor v = Tensor.bhsd(new float[] {1, 2}, 1, 1, 2, 1);
        DenseOracle.Result r = DenseOracle.compute(p, dense, Tensor.bhsd(new float[] {8}, 1, 1, 1, 1),
                Tensor.bhsd(new float[] {8, 7}, 1, 1, 2, 1), v);
        // Scores 65536 and 57344: the first wins completely; LSE = 65536 + log(1 + e^-8192) = 65536.
        assertEquals(1.0, r.out()[0], 1e-12);
        assertEquals(65536.0, r.lse()[0], 1e-9);
        DenseOracle.Result nan = DenseOracle.compute(p, dense, Tensor.bhsd(new float[] {1}, 1, 1, 1, 1),
                Tensor.bhsd(new float[] {Float.NaN, 1}, 1, 1, 2, 1), v);
        assertTrue(Double.isNaN(nan.out()[0]));
    }

    @Test
    void comparisonTreatsMatchingNanAsEqualAndLoneNanAsFailure() {
        assertEquals(0, Comparison.ratio(Double.NaN, Double.NaN, 1e-5, 1e-4));
        assertEquals(Double.POSITIVE_INFINITY, Comparison.ratio(Double.NaN, 1, 1e-5, 1e-4));
        assertEquals(Double.POSITIVE_INFINITY, Comparison.ratio(0, Double.NEGATIVE_INFINITY, 1e-5, 1e-4));
        assertEquals(0, Comparison.ratio(Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY, 1e-5, 1e-4));
        assertEquals(1.0, Comparison.ratio(1 + 2e-5 + 1e-4, 1, 2e-5, 1e-4), 1e-9);
    }
}
