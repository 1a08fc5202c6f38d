package dev.starling.api.plan;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Folding blocks, absorbing partials and merging normalised results all give the plain softmax, with the one policy. */
class OnlineSoftmaxTest {
    private static final int WIDTH = 5;

    /** Plain float64 softmax-weighted average and LSE of scores s against values v. */
    private static double[] plain(double[] s, float[][] v) {
        double m = Double.NEGATIVE_INFINITY;
        for (double x : s) {
            m = Math.max(m, x);
        }
        double sum = 0;
        double[] o = new double[WIDTH + 1];
        for (int j = 0; j < s.length; j++) {
            double w = Math.exp(s[j] - m);
            sum += w;
            for (int d = 0; d < WIDTH; d++) {
                o[d] += w * v[j][d];
            }
        }
        for (int d = 0; d < WIDTH; d++) {
            o[d] /= sum;
        }
        o[WIDTH] = m + Math.log(sum);
        return o;
    }

    /** Folds scores [from, to) into row r of the state, block by block. */
    private static void fold(OnlineSoftmax.Rows rows, int r, double[] s, float[][] v, int from, int to, int block) {
        for (int j0 = from; j0 < to; j0 += block) {
            int j1 = Math.min(to, j0 + block);
            double max = Double.NEGATIVE_INFINITY;
            for (int j = j0; j < j1; j++) {
                max = OnlineSoftmax.max(max, s[j]);
            }
            double shift = rows.raise(r, max);
            double sum = 0;
            for (int j = j0; j < j1; j++) {
                double w = Math.exp(s[j] - shift);
                sum += w;
                for (int d = 0; d < WIDTH; d++) {
                    rows.acc()[r * WIDTH + d] += (float) (w * v[j][d]);
                }
            }
            rows.add(r, sum);
        }
    }

    @Test
    void foldingAbsorbingAndMergingAgreeWithThePlainSoftmax() {
        Random random = new Random(7);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + random.nextInt(40);
            double[] s = new double[n];
            float[][] v = new float[n][WIDTH];
            for (int j = 0; j < n; j++) {
                s[j] = random.nextGaussian() * (trial % 3 == 0 ? 30 : 2);
                for (int d = 0; d < WIDTH; d++) {
                    v[j][d] = (float) random.nextGaussian();
                }
            }
            double[] want = plain(s, v);
            int cut = random.nextInt(n + 1);

            OnlineSoftmax.Rows rows = new OnlineSoftmax.Rows(3, WIDTH);
            fold(rows, 0, s, v, 0, n, 1 + random.nextInt(8));
            float[] whole = new float[WIDTH];
            float[] lse = new float[1];
            rows.finish(0, whole, 0, lse, 0);
            check(want, whole, lse[0]);

            // Two unnormalised partials absorbed into a third row.
            fold(rows, 1, s, v, 0, cut, 4);
            fold(rows, 2, s, v, cut, n, 3);
            OnlineSoftmax.Rows merged = new OnlineSoftmax.Rows(1, WIDTH);
            for (int r = 1; r <= 2; r++) {
                boolean part = r == 1 ? cut > 0 : cut < n;
                if (part) {
                    merged.absorb(0, rows.max(r), partialSum(rows, r), rows.acc(), r * WIDTH);
                }
            }
            merged.finish(0, whole, 0, lse, 0);
            check(want, whole, lse[0]);

            // Two normalised partials merged.
            float[] o1 = new float[WIDTH];
            float[] o2 = new float[WIDTH];
            float[] l = new float[2];
            rows.finish(1, o1, 0, l, 0);
            rows.finish(2, o2, 0, l, 1);
            float[] o = new float[WIDTH];
            float out = OnlineSoftmax.merge(o1, 0, l[0], o2, 0, l[1], WIDTH, o, 0);
            check(want, o, out);
            float back = OnlineSoftmax.merge(o2, 0, l[1], o1, 0, l[0], WIDTH, o2, 0);
            check(want, o2, back);
        }
    }

    private static double partialSum(OnlineSoftmax.Rows rows, int r) {
        float[] o = new float[WIDTH];
        float[] l = new float[1];
        rows.finish(r, o, 0, l, 0);
        return Math.exp(l[0] - rows.max(r));
    }

    private static void check(double[] want, float[] got, float lse) {
        for (int d = 0; d < WIDTH; d++) {
            assertEquals(want[d], got[d], 2e-5 + 1e-4 * Math.abs(want[d]), "feature " + d);
        }
        assertEquals(want[WIDTH], lse, 1e-4 + 1e-6 * Math.abs(want[WIDTH]));
    }

    @Test
    void emptyRowsGiveZeroAndMinusInfinity() {
        OnlineSoftmax.Rows rows = new OnlineSoftmax.Rows(1, WIDTH);
        float[] o = {1, 2, 3, 4, 5};
        float[] lse = {7};
        rows.finish(0, o, 0, lse, 0);
        assertArrayEquals(new float[WIDTH], o);
        assertEquals(Float.NEGATIVE_INFINITY, lse[0]);
        float[] m = new float[WIDTH];
        assertEquals(Float.NEGATIVE_INFINITY, OnlineSoftmax.merge(o, 0, lse[0], o, 0, lse[0], WIDTH, m, 0));
        assertArrayEquals(new float[WIDTH], m);
    }

    @Test
    void nonFiniteScoresAndValuesFollowTheOracle() {
        float[][] v = new float[3][WIDTH];
        v[1][2] = Float.NaN;
        v[2][3] = Float.POSITIVE_INFINITY;
        // A NaN value reaches its feature only, also through a zero weight; an infinite value with a positive weight stays infinite.
        float[] o = finish(new double[] {0.5, Double.NEGATIVE_INFINITY, 0.1}, v);
        assertTrue(Float.isNaN(o[2]));
        assertEquals(Float.POSITIVE_INFINITY, o[3]);
        assertEquals(0f, o[0]);
        // An infinite value with weight zero gives NaN (0 · ∞).
        o = finish(new double[] {0.5, 0.2, Double.NEGATIVE_INFINITY}, v);
        assertTrue(Float.isNaN(o[3]));
        // A NaN or +∞ score, or scores that are all −∞, poison the row.
        for (double[] s : new double[][] {{0.5, Double.NaN, 0.1}, {0.5, Double.POSITIVE_INFINITY, 0.1},
            {Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY}}) {
            o = finish(s, new float[3][WIDTH]);
            for (float x : o) {
                assertTrue(Float.isNaN(x));
            }
        }
    }

    private static float[] finish(double[] s, float[][] v) {
        OnlineSoftmax.Rows rows = new OnlineSoftmax.Rows(1, WIDTH);
        fold(rows, 0, s, v, 0, s.length, 1);
        float[] o = new float[WIDTH];
        float[] lse = new float[1];
        rows.finish(0, o, 0, lse, 0);
        return o;
    }

    @Test
    void tensorMergeChecksShapesAndWorksInPlace() {
        Tensor a = Tensor.zeros(TensorLayout.BHSD, 1, 2, 3, WIDTH);
        Tensor b = Tensor.zeros(TensorLayout.BSHD, 1, 2, 3, WIDTH);
        float[] la = {0, 0, 0, 0, 0, Float.NEGATIVE_INFINITY};
        float[] lb = {0, Float.NEGATIVE_INFINITY, 0, 0, 0, Float.NEGATIVE_INFINITY};
        a.data()[0] = 1;
        b.data()[0] = 3;
        OnlineSoftmax.merge(a, la, b, lb, a, la);
        assertEquals(2f, a.data()[0], 1e-6f);
        assertEquals((float) Math.log(2), la[0], 1e-6f);
        assertEquals(0f, la[1]);
        assertEquals(Float.NEGATIVE_INFINITY, la[5]);
        Tensor wrong = Tensor.zeros(TensorLayout.BHSD, 1, 2, 4, WIDTH);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OnlineSoftmax.merge(a, la, wrong, lb, a, la));
        assertTrue(e.getMessage().contains("o2 is [1, 2, 4, 5]") && e.getMessage().contains("[1, 2, 3, 5]"), e.getMessage());
    }
}
