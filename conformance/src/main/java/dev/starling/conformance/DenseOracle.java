package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;

/**
 * The definition of "right": dense masked attention in float64 over exactly the allowed sets
 * of DESIGN section 2, as {@link TokenMask#allowed} decides them pair by pair. Deliberately plain (no blocking, no streaming) so it can be read and
 * trusted; its cost is {@code O(B·Hq·Nq·Nk·D)}, for test sizes only.
 */
public final class DenseOracle {

    private DenseOracle() {
    }

    /**
     * Reference output and log-sum-exp.
     *
     * @param out {@code [B, Hq, Nq, Dv]} in BHSD order
     * @param lse {@code [B, Hq, Nq]}; {@code −∞} for empty rows
     */
    public record Result(double[] out, double[] lse) {
    }

    /**
     * Computes {@code O} and {@code LSE}.
     *
     * @param p the problem. Not modified.
     * @param layout the block layout. Not modified.
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @return the float64 result
     */
    public static Result compute(AttentionProblem p, BlockLayout layout, Tensor q, Tensor k, Tensor v) {
        int dim = p.headDim();
        int vdim = p.valueDim();
        double[] out = new double[p.batch() * p.queryHeads() * p.queryLength() * vdim];
        double[] lse = new double[p.lseSize()];
        double[] scores = new double[p.keyLength()];
        boolean[] in = new boolean[p.keyLength()];
        TokenMask mask = TokenMask.of(p, layout);
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kvh = p.kvHeadOf(h);
                for (int i = 0; i < p.queryLength(); i++) {
                    double max = Double.NEGATIVE_INFINITY;
                    boolean any = false;
                    for (int j = 0; j < p.keyLength(); j++) {
                        in[j] = mask.allowed(b, h, i, j);
                        if (!in[j]) {
                            continue;
                        }
                        double dot = 0;
                        int qo = q.offset(b, h, i);
                        int ko = k.offset(b, kvh, j);
                        for (int d = 0; d < dim; d++) {
                            dot += (double) q.data()[qo + d] * k.data()[ko + d];
                        }
                        scores[j] = p.scale() * dot;
                        max = any ? nanMax(max, scores[j]) : scores[j];
                        any = true;
                    }
                    int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                    if (!any) {
                        lse[row] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double sum = 0;
                    double[] o = new double[vdim];
                    for (int j = 0; j < p.keyLength(); j++) {
                        if (!in[j]) {
                            continue;
                        }
                        double w = Math.exp(scores[j] - max);
                        sum += w;
                        int vo = v.offset(b, kvh, j);
                        for (int d = 0; d < vdim; d++) {
                            o[d] += w * v.data()[vo + d];
                        }
                    }
                    for (int d = 0; d < vdim; d++) {
                        out[row * vdim + d] = o[d] / sum;
                    }
                    lse[row] = max + Math.log(sum);
                }
            }
        }
        return new Result(out, lse);
    }

    private static double nanMax(double a, double b) {
        return Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.max(a, b);
    }
}
