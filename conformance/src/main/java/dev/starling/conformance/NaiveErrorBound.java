package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.conformance.CaseGenerator.CaseKind;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Rule 51 of {@code RULES.md}, the FlashAttention criterion next to the tolerance rows: on each case, a
 * backend's largest error against the float64 oracle is at most {@value #FORWARD_FACTOR}× that of
 * {@link NaiveAttention} in the same precision (forward output), and {@value #GRADIENT_FACTOR}× for
 * each of {@code dq}, {@code dk}, {@code dv} when {@code backward} is declared, plus, as FlashAttention's own
 * tests add it, the rounding allowance {@link #roundingAllowance}. Its result's
 * {@code worstRatio} is the largest error as a fraction of that bound; {@link #naiveRatio()} the
 * largest ratio of the two errors.
 */
final class NaiveErrorBound {
    /** The forward bound, as a multiple of the naive implementation's error. */
    static final double FORWARD_FACTOR = 2;
    /** The gradient bound, as a multiple of the naive implementation's error. */
    static final double GRADIENT_FACTOR = 3;
    private static final String[] GRADIENTS = {"dq", "dk", "dv"};

    private final long seed;
    private double naiveRatio = Double.NaN;

    NaiveErrorBound(long seed) {
        this.seed = seed;
    }

    /** @return the largest ratio of the backend's error to the naive implementation's over the cases run, NaN before */
    double naiveRatio() {
        return naiveRatio;
    }

    /** The cases: those of rules 1, 2, 3 and 4 (normal inputs), as declared. */
    private List<AttentionCase> cases(Capabilities caps, Precision p, boolean backward) {
        List<AttentionCase> out = new ArrayList<>();
        for (CaseKind kind : new CaseKind[] {CaseKind.CORE, CaseKind.TAILS, CaseKind.CAUSAL, CaseKind.GROUPED_QUERY}) {
            for (AttentionCase c : CaseGenerator.cases(kind, seed, p)) {
                if (caps.unsupported(c.problem(), false, backward).isEmpty()) {
                    out.add(c);
                }
            }
        }
        return out;
    }

    /** @return {@code {largest |x − ref| over the finite pairs, its index}} of BHSD arrays */
    private static double[] largestError(float[] x, double[] ref) {
        double worst = 0;
        int at = -1;
        for (int i = 0; i < ref.length; i++) {
            double e = Math.abs(x[i] - ref[i]);
            if (Double.isFinite(ref[i]) && e > worst) {
                worst = e;
                at = i;
            }
        }
        return new double[] {worst, at};
    }

    /** The BHSD float32 values of a tensor. */
    private static float[] bhsd(Tensor t) {
        return t.toLayout(dev.starling.api.TensorLayout.BHSD).data();
    }

    /**
     * FlashAttention's allowance for the rounding of any arithmetic on the reference values:
     * {@code 2·max |round(round(x + 0.3) − 0.3) − round(x)|} over {@code sizes} in the precision (its tests'
     * {@code fwd_atol = 2 * (out_ref + 0.3 - 0.3 - out_ref).abs().max()}, and likewise {@code dq_atol} and so on),
     * with {@code x} the oracle's output or gradient.
     */
    static double roundingAllowance(Precision p, double[] sizes) {
        double worst = 0;
        for (double x : sizes) {
            if (Double.isFinite(x)) {
                float r = NaiveAttention.round(p, (float) x);
                float up = NaiveAttention.round(p, r + 0.3f);
                worst = Math.max(worst, Math.abs(NaiveAttention.round(p, up - 0.3f) - r));
            }
        }
        return 2 * worst;
    }

    /** Checks one error against its bound; returns the error as a fraction of the bound. */
    private double bound(String what, AttentionProblem p, int[] shape, double[] backend, double naive, double factor,
                         double allowance) {
        double ratio = naive > 0 ? backend[0] / naive : backend[0] > 0 ? Double.POSITIVE_INFINITY : 0;
        naiveRatio = Double.isNaN(naiveRatio) ? ratio : Math.max(naiveRatio, ratio);
        double limit = factor * naive + allowance;
        if (!(backend[0] <= limit)) {
            int i = (int) backend[1];
            int d = i % shape[3];
            int n = i / shape[3] % shape[2];
            int h = i / shape[3] / shape[2] % shape[1];
            int b = i / shape[3] / shape[2] / shape[1];
            throw new RuleFailure(String.format(Locale.ROOT, "%s: largest error against float64 %.3g (at (b=%d, h=%d, %s=%d, "
                    + "d=%d)) is %.2f times the naive %s implementation's %.3g; at most %.0f times it plus the rounding "
                    + "allowance %.3g, %.3g (the FlashAttention criterion)", what, backend[0], b, h,
                    what.endsWith("dq") || what.endsWith("output") ? "i" : "j", n, d, ratio,
                    p.precision().name().toLowerCase(Locale.ROOT), naive, factor, allowance, limit), backend[0] / limit);
        }
        return limit > 0 ? backend[0] / limit : 0;
    }

    /** Rule 51: the forward, and the gradients when declared, within their multiple of the naive error. */
    double check(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        boolean backward = caps.has(Feature.BACKWARD);
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : cases(caps, p, false)) {
                AttentionProblem pr = c.problem();
                Tensor out = c.newOutput();
                try (AttentionPlan plan = backend.plan(pr, c.layout())) {
                    plan.forward(c.q(), c.k(), c.v(), out);
                } catch (RuntimeException e) {
                    throw new RuleFailure("case " + c + " threw " + e, Double.NaN);
                }
                double[] ref = c.expected().out();
                double naive = largestError(NaiveAttention.forward(pr, c.layout(), c.q(), c.k(), c.v()), ref)[0];
                worst = Math.max(worst, bound("case " + c + ", output", pr, new int[] {pr.batch(), pr.queryHeads(),
                    pr.queryLength(), pr.valueDim()}, largestError(bhsd(out), ref), naive, FORWARD_FACTOR,
                        roundingAllowance(p, ref)));
            }
            if (!backward) {
                continue;
            }
            for (AttentionCase c : cases(caps, p, true)) {
                AttentionProblem pr = c.problem();
                GradientRules.Call call = new GradientRules.Call(c);
                Tensor[] grads = call.newGradients();
                try (AttentionPlan plan = backend.plan(pr, c.layout())) {
                    plan.backward(call.q, call.k, call.v, call.out, call.lse, call.dOut, grads[0], grads[1], grads[2]);
                } catch (RuntimeException e) {
                    throw new RuleFailure("case " + c + ": backward threw " + e, Double.NaN);
                }
                GradientOracle.Result expected = call.expected();
                double[][] refs = {expected.dq(), expected.dk(), expected.dv()};
                float[][] naive = NaiveAttention.backward(pr, c.layout(), call.q, call.k, call.v, call.out, call.lse,
                        call.dOut);
                int[][] shapes = {{pr.batch(), pr.queryHeads(), pr.queryLength(), pr.headDim()},
                    {pr.batch(), pr.kvHeads(), pr.keyLength(), pr.headDim()},
                    {pr.batch(), pr.kvHeads(), pr.keyLength(), pr.valueDim()}};
                for (int t = 0; t < 3; t++) {
                    worst = Math.max(worst, bound("case " + c + ", backward " + GRADIENTS[t], pr, shapes[t],
                            largestError(bhsd(grads[t]), refs[t]), largestError(naive[t], refs[t])[0], GRADIENT_FACTOR,
                            roundingAllowance(p, refs[t])));
                }
            }
        }
        return worst;
    }
}
