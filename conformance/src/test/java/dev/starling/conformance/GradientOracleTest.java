package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The gradient oracle agrees with central finite differences of the float64 forward, element by
 * element: GQA with tails, {@code Dv != D} and key and query lengths; causal with a custom scale; causal
 * MQA with {@code Nq < Nk} (the bottom-right shift) and partial tail blocks; causal with {@code Nq > Nk}
 * (rows with no key). And its non-finite policy is the documented one.
 */
class GradientOracleTest {

    @Test
    void matchesCentralFiniteDifferences() {
        AttentionProblem[] problems = {
            AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(13).keyLength(11).headDim(3).valueDim(5)
                    .keyLengths(11, 7).queryLengths(13, 9).build(),
            AttentionProblem.builder().heads(2).length(12).headDim(4).causal(true).scale(0.7f).build(),
            AttentionProblem.builder().heads(3).kvHeads(1).queryLength(7).keyLength(10).headDim(2).valueDim(3)
                    .causal(true).build(),
            AttentionProblem.builder().heads(2).queryLength(10).keyLength(6).headDim(3).valueDim(2).causal(true).build(),
        };
        String[] patterns = {"bigbird(block=3, window=3, global=1, random=1)", "window(block=4)",
            "bigbird(block=3, window=1, global=1, random=1)", "dense(block=4)"};
        Random random = new Random(11);
        for (int c = 0; c < problems.length; c++) {
            AttentionProblem p = problems[c];
            BlockLayout layout = Patterns.parse(patterns[c]).layout(p.queryLength(), p.keyLength(), p.queryHeads(),
                    p.causal());
            double[] q = normal(random, p.batch() * p.queryHeads() * p.queryLength() * p.headDim());
            double[] k = normal(random, p.batch() * p.kvHeads() * p.keyLength() * p.headDim());
            double[] v = normal(random, p.batch() * p.kvHeads() * p.keyLength() * p.valueDim());
            double[] g = normal(random, p.batch() * p.queryHeads() * p.queryLength() * p.valueDim());
            GradientOracle.Result r = GradientOracle.compute(p, layout, q, k, v, g);
            check("dq", r.dq(), q, x -> loss(p, layout, x, k, v, g));
            check("dk", r.dk(), k, x -> loss(p, layout, q, x, v, g));
            check("dv", r.dv(), v, x -> loss(p, layout, q, k, x, g));
        }
    }

    /**
     * The oracle's non-finite policy (the one rule 30 checks): a NaN in {@code q} or {@code dOut} of a padded
     * row reaches nothing; a NaN in feature {@code d} of a read row's {@code dOut} makes that row's
     * {@code dq} NaN, every feature of {@code dk} of the keys it reads NaN, and only feature {@code d} of their
     * {@code dv}.
     */
    @Test
    void nonFiniteInputsReachExactlyWhatTheFormulasGive() {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(2).length(8).headDim(2).valueDim(3)
                .queryLengths(8, 6).build();
        // Rows of block 0 read key block 0 only; key block 1 is read by rows of block 1 only.
        BlockLayout layout = Patterns.parse("window(block=4, blocks=1)").layout(8, 8, 2, false);
        Random random = new Random(3);
        double[] q = normal(random, 2 * 2 * 8 * 2);
        double[] k = normal(random, 2 * 2 * 8 * 2);
        double[] v = normal(random, 2 * 2 * 8 * 3);
        double[] g = normal(random, 2 * 2 * 8 * 3);
        // Rows 6 and 7 of batch entry 1 are padded: NaN in their dOut and q reaches nothing.
        g[((1 * 2 + 0) * 8 + 7) * 3 + 1] = Double.NaN;
        q[((1 * 2 + 1) * 8 + 6) * 2] = Double.NaN;
        GradientOracle.Result clean = GradientOracle.compute(p, layout, q, k, v, g);
        for (double[] a : new double[][] {clean.dq(), clean.dk(), clean.dv()}) {
            for (double x : a) {
                assertTrue(Double.isFinite(x), "a NaN in a padded row reached a gradient");
            }
        }
        // NaN in feature 2 of dOut of row (b=0, h=1, i=2): it reads keys 0..3 of (b=0, kv head 1).
        g[((0 * 2 + 1) * 8 + 2) * 3 + 2] = Double.NaN;
        GradientOracle.Result r = GradientOracle.compute(p, layout, q, k, v, g);
        for (int b = 0; b < 2; b++) {
            for (int h = 0; h < 2; h++) {
                for (int n = 0; n < 8; n++) {
                    boolean row = b == 0 && h == 1 && n == 2;
                    boolean key = b == 0 && h == 1 && n < 4;
                    for (int d = 0; d < 2; d++) {
                        assertEquals(row, Double.isNaN(r.dq()[((b * 2 + h) * 8 + n) * 2 + d]), "dq " + b + h + n + d);
                        assertEquals(key, Double.isNaN(r.dk()[((b * 2 + h) * 8 + n) * 2 + d]), "dk " + b + h + n + d);
                    }
                    for (int d = 0; d < 3; d++) {
                        assertEquals(key && d == 2, Double.isNaN(r.dv()[((b * 2 + h) * 8 + n) * 3 + d]), "dv " + b + h + n + d);
                    }
                }
            }
        }
    }

    private static double loss(AttentionProblem p, BlockLayout layout, double[] q, double[] k, double[] v, double[] g) {
        double[] o = GradientOracle.forward(p, layout, q, k, v);
        double sum = 0;
        for (int i = 0; i < o.length; i++) {
            sum += o[i] * g[i];
        }
        return sum;
    }

    private static void check(String name, double[] analytic, double[] x, java.util.function.ToDoubleFunction<double[]> f) {
        double h = 1e-5;
        int zeros = 0;
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + h;
            double up = f.applyAsDouble(x);
            x[i] = keep - h;
            double down = f.applyAsDouble(x);
            x[i] = keep;
            double numeric = (up - down) / (2 * h);
            assertEquals(numeric, analytic[i], 1e-7 + 1e-6 * Math.abs(numeric), name + "[" + i + "]");
            zeros += analytic[i] == 0 ? 1 : 0;
        }
        assertTrue(zeros < x.length, name + " is not all zeros");
    }

    private static double[] normal(Random random, int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = random.nextGaussian();
        }
        return a;
    }
}
