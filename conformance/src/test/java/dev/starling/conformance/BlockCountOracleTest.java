package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The float64 oracles with block counts against the definition: an entry of count {@code c} is
 * attention over a key list in which that block's keys appear {@code c} times. For each query
 * block the test builds that list explicitly (keys and values copied {@code c} times, a dense
 * layout over them) and checks the oracles' output, LSE and gradients against it.
 */
class BlockCountOracleTest {
    private static final int BLOCK = 8;
    private static final int NQ = 2 * BLOCK;
    private static final int NK = 4 * BLOCK - 3;   // a partial tail block
    private static final int D = 4;
    private static final int DV = 3;
    /** Row 0: block 0 once, block 2 three times, block 3 (the tail) twice; row 1: block 1 twice, block 3 once. */
    private static final int[] ROW_START = {0, 3, 5};
    private static final int[] BLOCKS = {0, 2, 3, 1, 3};
    private static final int[] COUNTS = {1, 3, 2, 2, 1};
    private static final AttentionProblem PROBLEM = AttentionProblem.builder().heads(1).queryLength(NQ).keyLength(NK)
            .headDim(D).valueDim(DV).build();

    private static BlockLayout counted() {
        return BlockLayout.ofCsr(NQ, NK, BLOCK, BLOCK, false, new int[][] {ROW_START}, new int[][] {BLOCKS},
                new int[][] {COUNTS}, 0);
    }

    private static Tensor random(Random rnd, int n, int d) {
        float[] x = new float[n * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return Tensor.bhsd(x, 1, 1, n, d);
    }

    /** Random normal {@code q}, {@code k}, {@code v} and {@code dOut} of {@link #PROBLEM}. */
    private static Tensor[] inputs(long seed) {
        Random rnd = new Random(seed);
        return new Tensor[] {random(rnd, NQ, D), random(rnd, NK, D), random(rnd, NK, DV), random(rnd, NQ, DV)};
    }

    /** The keys (or values) of row {@code qb}'s entries, each block repeated its count times; {@code from[x]} the source key. */
    private static Tensor expand(Tensor t, int qb, int[] from) {
        int d = t.dim();
        float[] out = new float[from.length * d];
        for (int x = 0; x < from.length; x++) {
            for (int f = 0; f < d; f++) {
                out[x * d + f] = t.get(0, 0, from[x], f);
            }
        }
        return Tensor.bhsd(out, 1, 1, from.length, d);
    }

    private static int[] sources(int qb) {
        int n = 0;
        for (int p = ROW_START[qb]; p < ROW_START[qb + 1]; p++) {
            n += COUNTS[p] * (Math.min(NK, (BLOCKS[p] + 1) * BLOCK) - BLOCKS[p] * BLOCK);
        }
        int[] from = new int[n];
        int at = 0;
        for (int p = ROW_START[qb]; p < ROW_START[qb + 1]; p++) {
            for (int c = 0; c < COUNTS[p]; c++) {
                for (int j = BLOCKS[p] * BLOCK; j < Math.min(NK, (BLOCKS[p] + 1) * BLOCK); j++) {
                    from[at++] = j;
                }
            }
        }
        return from;
    }

    private static Tensor rows(Tensor t, int qb) {
        float[] out = new float[BLOCK * t.dim()];
        for (int i = 0; i < BLOCK; i++) {
            for (int f = 0; f < t.dim(); f++) {
                out[i * t.dim() + f] = t.get(0, 0, qb * BLOCK + i, f);
            }
        }
        return Tensor.bhsd(out, 1, 1, BLOCK, t.dim());
    }

    @Test
    void aCountIsTheBlockListedThatManyTimes() {
        AttentionProblem p = PROBLEM;
        Tensor[] in = inputs(24);
        Tensor q = in[0];
        Tensor k = in[1];
        Tensor v = in[2];
        Tensor dOut = in[3];
        BlockLayout layout = counted();
        assertTrue(layout.hasCounts());
        DenseOracle.Result got = DenseOracle.compute(p, layout, q, k, v);
        GradientOracle.Result grads = GradientOracle.compute(p, layout, q, k, v, dOut);
        double[] dk = new double[NK * D];
        double[] dv = new double[NK * DV];
        for (int qb = 0; qb < 2; qb++) {
            int[] from = sources(qb);
            AttentionProblem listed = AttentionProblem.builder().heads(1).queryLength(BLOCK).keyLength(from.length)
                    .headDim(D).valueDim(DV).scale(p.scale()).build();
            BlockLayout dense = Patterns.parse("dense(block=" + BLOCK + ")").layout(BLOCK, from.length, 1);
            Tensor lk = expand(k, qb, from);
            Tensor lv = expand(v, qb, from);
            DenseOracle.Result want = DenseOracle.compute(listed, dense, rows(q, qb), lk, lv);
            GradientOracle.Result wantGrads = GradientOracle.compute(listed, dense, rows(q, qb), lk, lv, rows(dOut, qb));
            for (int i = 0; i < BLOCK; i++) {
                int row = qb * BLOCK + i;
                assertEquals(want.lse()[i], got.lse()[row], 1e-12, "lse of row " + row);
                for (int f = 0; f < DV; f++) {
                    assertEquals(want.out()[i * DV + f], got.out()[row * DV + f], 1e-12, "out of row " + row);
                }
                for (int f = 0; f < D; f++) {
                    assertEquals(wantGrads.dq()[i * D + f], grads.dq()[row * D + f], 1e-12, "dq of row " + row);
                }
            }
            // A key listed c times gets the gradients of its c copies.
            for (int x = 0; x < from.length; x++) {
                for (int f = 0; f < D; f++) {
                    dk[from[x] * D + f] += wantGrads.dk()[x * D + f];
                }
                for (int f = 0; f < DV; f++) {
                    dv[from[x] * DV + f] += wantGrads.dv()[x * DV + f];
                }
            }
        }
        assertArrayEquals(dk, grads.dk(), 1e-12);
        assertArrayEquals(dv, grads.dv(), 1e-12);
    }

    @Test
    void countsOfOneAreTheLayoutWithoutCounts() {
        AttentionProblem p = PROBLEM;
        Tensor[] in = inputs(7);
        Tensor q = in[0];
        Tensor k = in[1];
        Tensor v = in[2];
        BlockLayout plain = BlockLayout.ofCsr(NQ, NK, BLOCK, BLOCK, false, new int[][] {ROW_START}, new int[][] {BLOCKS});
        BlockLayout ones = BlockLayout.ofCsr(NQ, NK, BLOCK, BLOCK, false, new int[][] {ROW_START}, new int[][] {BLOCKS},
                new int[][] {{1, 1, 1, 1, 1}}, 0);
        assertEquals(plain, ones);
        // Row 1 has counts 2 and 1, row 0 counts 1 only: row 0 is bit for bit the row without counts.
        BlockLayout rowOneCounted = BlockLayout.ofCsr(NQ, NK, BLOCK, BLOCK, false, new int[][] {ROW_START},
                new int[][] {BLOCKS}, new int[][] {{1, 1, 1, 2, 1}}, 0);
        DenseOracle.Result a = DenseOracle.compute(p, plain, q, k, v);
        DenseOracle.Result b = DenseOracle.compute(p, rowOneCounted, q, k, v);
        for (int i = 0; i < BLOCK; i++) {
            assertEquals(Double.doubleToRawLongBits(a.lse()[i]), Double.doubleToRawLongBits(b.lse()[i]));
        }
        assertTrue(a.lse()[BLOCK] != b.lse()[BLOCK], "row 1 counts block 1 twice");
    }
}
