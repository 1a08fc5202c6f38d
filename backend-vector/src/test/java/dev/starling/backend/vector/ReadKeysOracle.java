package dev.starling.backend.vector;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;
import dev.starling.conformance.GradientOracle;

/**
 * {@link GradientOracle}'s formulas with one difference: a row's output {@code O = Σ P·v} sums over
 * the keys the row reads only. {@code GradientOracle} sums over every key with {@code P = 0} for the
 * unread ones, so a NaN or infinity in a value no row reads still gives {@code 0·NaN = NaN} in every
 * row's {@code D} — against DESIGN section 2 ("nothing non-finite reaches a row that does not read
 * it"). Used only for cases with non-finite values, until the conformance oracle is fixed.
 */
final class ReadKeysOracle {
    private ReadKeysOracle() {
    }

    static GradientOracle.Result compute(AttentionProblem p, BlockLayout layout, Tensor qt, Tensor kt, Tensor vt,
                                         Tensor gt) {
        double[] q = bhsd(qt);
        double[] k = bhsd(kt);
        double[] v = bhsd(vt);
        double[] dOut = bhsd(gt);
        TokenMask mask = TokenMask.of(p, layout);
        int nq = p.queryLength();
        int nk = p.keyLength();
        int dim = p.headDim();
        int vdim = p.valueDim();
        double s = p.scale();
        double[] dq = new double[q.length];
        double[] dk = new double[k.length];
        double[] dv = new double[v.length];
        double[] prob = new double[nk];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kBase = (b * p.kvHeads() + p.kvHeadOf(h)) * nk;
                for (int i = 0; i < nq; i++) {
                    int row = (b * p.queryHeads() + h) * nq + i;
                    double max = Double.NEGATIVE_INFINITY;
                    boolean any = false;
                    for (int j = 0; j < nk; j++) {
                        if (mask.allowed(b, h, i, j)) {
                            double dot = 0;
                            for (int d = 0; d < dim; d++) {
                                dot += q[row * dim + d] * k[(kBase + j) * dim + d];
                            }
                            prob[j] = s * dot;
                            max = any ? Math.max(max, prob[j]) : prob[j];
                            any = true;
                        }
                    }
                    if (!any) {
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < nk; j++) {
                        prob[j] = mask.allowed(b, h, i, j) ? Math.exp(prob[j] - max) : 0;
                        sum += prob[j];
                    }
                    double[] o = new double[vdim];
                    for (int j = 0; j < nk; j++) {
                        prob[j] /= sum;
                        if (mask.allowed(b, h, i, j)) {
                            for (int d = 0; d < vdim; d++) {
                                o[d] += prob[j] * v[(kBase + j) * vdim + d];
                            }
                        }
                    }
                    double delta = 0;
                    for (int d = 0; d < vdim; d++) {
                        delta += dOut[row * vdim + d] * o[d];
                    }
                    for (int j = 0; j < nk; j++) {
                        if (!mask.allowed(b, h, i, j)) {
                            continue;
                        }
                        double dp = 0;
                        for (int d = 0; d < vdim; d++) {
                            dp += dOut[row * vdim + d] * v[(kBase + j) * vdim + d];
                            dv[(kBase + j) * vdim + d] += prob[j] * dOut[row * vdim + d];
                        }
                        double ds = prob[j] * (dp - delta);
                        for (int d = 0; d < dim; d++) {
                            dq[row * dim + d] += s * ds * k[(kBase + j) * dim + d];
                            dk[(kBase + j) * dim + d] += s * ds * q[row * dim + d];
                        }
                    }
                }
            }
        }
        return new GradientOracle.Result(dq, dk, dv);
    }

    private static double[] bhsd(Tensor t) {
        float[] f = t.toLayout(TensorLayout.BHSD).data();
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }
}
