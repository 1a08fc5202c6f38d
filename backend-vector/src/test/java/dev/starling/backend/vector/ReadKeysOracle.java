package dev.starling.backend.vector;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;
import dev.starling.conformance.GradientOracle;

/**
 * {@link GradientOracle}'s formulas, visiting only the keys each row reads (so it runs at long
 * sequences: cost proportional to the allowed pairs), with one difference: a row's output
 * {@code O = Σ P·v} sums over the keys the row reads only. {@code GradientOracle} sums over every key with {@code P = 0} for the
 * unread ones, so a NaN or infinity in a value no row reads still gives {@code 0·NaN = NaN} in every
 * row's {@code D} — against DESIGN section 2 ("nothing non-finite reaches a row that does not read
 * it"). Used for cases with non-finite values (until the conformance oracle is fixed) and for
 * sequences too long for the dense oracle.
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
        int[] keys = new int[nk];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kBase = (b * p.kvHeads() + p.kvHeadOf(h)) * nk;
                for (int i = 0; i < p.queryLength(b); i++) {
                    int row = (b * p.queryHeads() + h) * nq + i;
                    // The allowed keys, ascending (CSR rows are ascending), as the oracle visits them.
                    int count = 0;
                    int qb = i / layout.queryBlock();
                    for (int at = layout.rowBegin(h, qb); at < layout.rowEnd(h, qb); at++) {
                        int kb = layout.keyBlock(h, at);
                        for (int j = mask.keyBegin(kb); j < mask.keyEnd(b, i, kb); j++) {
                            keys[count++] = j;
                        }
                    }
                    if (count == 0) {
                        continue;
                    }
                    double max = Double.NEGATIVE_INFINITY;
                    for (int x = 0; x < count; x++) {
                        int j = keys[x];
                        double dot = 0;
                        for (int d = 0; d < dim; d++) {
                            dot += q[row * dim + d] * k[(kBase + j) * dim + d];
                        }
                        prob[x] = s * dot;
                        max = x == 0 ? prob[x] : Math.max(max, prob[x]);
                    }
                    double sum = 0;
                    for (int x = 0; x < count; x++) {
                        prob[x] = Math.exp(prob[x] - max);
                        sum += prob[x];
                    }
                    double[] o = new double[vdim];
                    for (int x = 0; x < count; x++) {
                        prob[x] /= sum;
                        for (int d = 0; d < vdim; d++) {
                            o[d] += prob[x] * v[(kBase + keys[x]) * vdim + d];
                        }
                    }
                    double delta = 0;
                    for (int d = 0; d < vdim; d++) {
                        delta += dOut[row * vdim + d] * o[d];
                    }
                    for (int x = 0; x < count; x++) {
                        int j = keys[x];
                        double dp = 0;
                        for (int d = 0; d < vdim; d++) {
                            dp += dOut[row * vdim + d] * v[(kBase + j) * vdim + d];
                            dv[(kBase + j) * vdim + d] += prob[x] * dOut[row * vdim + d];
                        }
                        double ds = prob[x] * (dp - delta);
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
