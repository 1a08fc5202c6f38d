package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.GradientOracle;
import java.util.Arrays;
import java.util.Random;

/**
 * One backward case on the vector backend against the float64 {@link GradientOracle}: inputs,
 * a random output gradient, gradients pre-filled with NaN (so an unwritten element shows), the
 * comparison element by element, and the errors measured on the way.
 */
final class GradientCheck {
    /** The fp32 gradient row's atol and rtol (DESIGN section 6), here as a plain absolute bound: stricter than the kit's. */
    static final double ATOL = 1e-4;
    static final double RTOL = 5e-4;

    /** Worst errors of one gradient tensor. */
    record Error(double maxAbs, double maxRelToMaxAbs, double worstOverTolerance) {
        @Override
        public String toString() {
            return String.format("max abs %.3g, max abs / max|ref| %.3g, worst / tolerance %.3f", maxAbs, maxRelToMaxAbs,
                    worstOverTolerance);
        }
    }

    /** The gradients of one call and their errors. */
    record Outcome(Tensor dq, Tensor dk, Tensor dv, Error eq, Error ek, Error ev) {
    }

    final AttentionCase c;
    final Tensor dOut;
    final TensorLayout gradLayout;

    GradientCheck(AttentionCase c, long seed, TensorLayout gradLayout) {
        this.c = c;
        this.gradLayout = gradLayout;
        AttentionProblem p = c.problem();
        Random random = new Random(seed);
        this.dOut = Tensor.zeros(gradLayout, p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
        for (int i = 0; i < dOut.data().length; i++) {
            dOut.data()[i] = (float) random.nextGaussian();
        }
    }

    Tensor[] newGradients() {
        AttentionProblem p = c.problem();
        Tensor dq = Tensor.zeros(gradLayout, p.batch(), p.queryHeads(), p.queryLength(), p.headDim());
        Tensor dk = Tensor.zeros(gradLayout == TensorLayout.BHSD ? TensorLayout.BSHD : TensorLayout.BHSD, p.batch(),
                p.kvHeads(), p.keyLength(), p.headDim());
        Tensor dv = Tensor.zeros(gradLayout, p.batch(), p.kvHeads(), p.keyLength(), p.valueDim());
        Arrays.fill(dq.data(), Float.NaN);
        Arrays.fill(dk.data(), Float.NaN);
        Arrays.fill(dv.data(), Float.NaN);
        return new Tensor[] {dq, dk, dv};
    }

    /** Forward, then backward on {@code backend}; checks inputs are untouched and a second call gives the same bits. */
    Outcome run(SparseAttention backend) {
        AttentionProblem p = c.problem();
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        float[][] before = {c.q().data().clone(), c.k().data().clone(), c.v().data().clone(), dOut.data().clone()};
        Tensor[] g = newGradients();
        try (AttentionPlan plan = backend.plan(p, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
            float[] outBefore = out.data().clone();
            float[] lseBefore = lse.clone();
            plan.backward(c.q(), c.k(), c.v(), out, lse, dOut, g[0], g[1], g[2]);
            assertArrayEquals(outBefore, out.data(), "out modified");
            assertArrayEquals(lseBefore, lse, "lse modified");
            Tensor[] again = newGradients();
            plan.backward(c.q(), c.k(), c.v(), out, lse, dOut, again[0], again[1], again[2]);
            for (int x = 0; x < 3; x++) {
                assertBitsEqual(g[x].data(), again[x].data(), c + ": second call");
            }
        }
        assertArrayEquals(before[0], c.q().data(), "q modified");
        assertArrayEquals(before[1], c.k().data(), "k modified");
        assertArrayEquals(before[2], c.v().data(), "v modified");
        assertArrayEquals(before[3], dOut.data(), "dOut modified");
        GradientOracle.Result want = allFinite(c.v().data())
                ? GradientOracle.compute(p, c.layout(), c.q(), c.k(), c.v(), dOut)
                : ReadKeysOracle.compute(p, c.layout(), c.q(), c.k(), c.v(), dOut);
        Error eq = compare("dq", want.dq(), g[0]);
        Error ek = compare("dk", want.dk(), g[1]);
        Error ev = compare("dv", want.dv(), g[2]);
        return new Outcome(g[0], g[1], g[2], eq, ek, ev);
    }

    private static boolean allFinite(float[] a) {
        for (float x : a) {
            if (!Float.isFinite(x)) {
                return false;
            }
        }
        return true;
    }

    static void assertBitsEqual(float[] a, float[] b, String what) {
        for (int i = 0; i < a.length; i++) {
            if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                fail(what + ": bits differ at " + i + ": " + a[i] + " vs " + b[i]);
            }
        }
    }

    /** Compares in BHSD order; non-finite values must match exactly, finite ones within the tolerance. */
    private Error compare(String name, double[] want, Tensor got) {
        double maxRef = 0;
        for (double w : want) {
            if (Double.isFinite(w)) {
                maxRef = Math.max(maxRef, Math.abs(w));
            }
        }
        double maxAbs = 0;
        double worst = 0;
        int at = 0;
        for (int b = 0; b < got.batch(); b++) {
            for (int h = 0; h < got.heads(); h++) {
                for (int n = 0; n < got.length(); n++) {
                    for (int d = 0; d < got.dim(); d++, at++) {
                        double x = got.get(b, h, n, d);
                        double w = want[at];
                        boolean ok;
                        if (!Double.isFinite(w) || !Double.isFinite(x)) {
                            ok = Double.compare(x, w) == 0 || (Double.isNaN(x) && Double.isNaN(w));
                        } else {
                            double diff = Math.abs(x - w);
                            maxAbs = Math.max(maxAbs, diff);
                            double tol = ATOL + RTOL * Math.abs(w);
                            worst = Math.max(worst, diff / tol);
                            ok = diff <= tol;
                        }
                        if (!ok) {
                            fail(c + ": " + name + " at (b=" + b + ", h=" + h + ", n=" + n + ", d=" + d + "): " + x
                                    + " vs " + w);
                        }
                    }
                }
            }
        }
        return new Error(maxAbs, maxRef == 0 ? 0 : maxAbs / maxRef, worst);
    }
}
