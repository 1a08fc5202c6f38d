package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The gradient oracle agrees with central finite differences of the float64 forward, element by element. */
class GradientOracleTest {

    @Test
    void matchesCentralFiniteDifferences() {
        AttentionProblem[] problems = {
            AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(13).keyLength(11).headDim(3).valueDim(5)
                    .keyLengths(11, 7).queryLengths(13, 9).build(),
            AttentionProblem.builder().heads(2).length(12).headDim(4).causal(true).scale(0.7f).build(),
        };
        String[] patterns = {"bigbird(block=3, window=3, global=1, random=1)", "window(block=4)"};
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
