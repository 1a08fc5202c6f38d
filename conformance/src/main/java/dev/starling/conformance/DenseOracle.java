package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;

/**
 * The definition of "right": dense masked attention in float64 over exactly the allowed sets
 * of DESIGN section 2, as {@link TokenMask#allowed} decides them pair by pair, each score plus the
 * log-weight {@code ln c} of its block's count ({@link TokenMask#logWeight(int, int, int, int)}; 0 without
 * counts). Deliberately plain (no blocking, no streaming) so it can be read and trusted; its cost is {@code O(B·Hq·Nq·Nk·D)}, for test sizes only.
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
        int vdim = p.valueDim();
        double[] out = new double[p.batch() * p.queryHeads() * p.queryLength() * vdim];
        double[] lse = new double[p.lseSize()];
        double[] scores = new double[p.keyLength()];
        boolean[] in = new boolean[p.keyLength()];
        double[] o = new double[vdim];
        TokenMask mask = TokenMask.of(p, layout);
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                    lse[row] = row(p, mask, q, k, v, b, h, i, o, scores, in);
                    System.arraycopy(o, 0, out, row * vdim, vdim);
                }
            }
        }
        return new Result(out, lse);
    }

    /**
     * One row of {@code O} and its {@code LSE}, exactly as {@link #compute} gives them, at a cost of
     * {@code O(Nk·(D + Dv))}: for checking a few rows of a problem too long for the whole oracle.
     *
     * @param p the problem. Not modified.
     * @param layout the block layout. Not modified.
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param b batch entry
     * @param h query head
     * @param i query row
     * @param out receives {@code O[b, h, i, :]}, {@code Dv} values. Modified.
     * @return {@code LSE[b, h, i]}
     */
    public static double row(AttentionProblem p, BlockLayout layout, Tensor q, Tensor k, Tensor v, int b, int h, int i,
                             double[] out) {
        return row(p, TokenMask.of(p, layout), q, k, v, b, h, i, out, new double[p.keyLength()],
                new boolean[p.keyLength()]);
    }

    private static double row(AttentionProblem p, TokenMask mask, Tensor q, Tensor k, Tensor v, int b, int h, int i,
                              double[] o, double[] scores, boolean[] in) {
        int dim = p.headDim();
        int vdim = p.valueDim();
        int kvh = p.kvHeadOf(h);
        Arrays.fill(o, 0, vdim, 0.0);
        double max = Double.NEGATIVE_INFINITY;
        boolean any = false;
        long qo = q.index(b, h, i, 0);
        long qs = q.strides()[3];
        long ks = k.strides()[3];
        long vs = v.strides()[3];
        for (int j = 0; j < p.keyLength(); j++) {
            double logWeight = mask.logWeight(b, h, i, j);
            in[j] = logWeight != Double.NEGATIVE_INFINITY;
            if (!in[j]) {
                continue;
            }
            double dot = 0;
            long ko = k.index(b, kvh, j, 0);
            for (int d = 0; d < dim; d++) {
                dot += (double) q.read(qo + d * qs) * k.read(ko + d * ks);
            }
            scores[j] = logWeight == 0 ? p.scale() * dot : p.scale() * dot + logWeight;
            max = any ? nanMax(max, scores[j]) : scores[j];
            any = true;
        }
        if (!any) {
            return Double.NEGATIVE_INFINITY;
        }
        double sum = 0;
        for (int j = 0; j < p.keyLength(); j++) {
            if (!in[j]) {
                continue;
            }
            double w = Math.exp(scores[j] - max);
            sum += w;
            long vo = v.index(b, kvh, j, 0);
            for (int d = 0; d < vdim; d++) {
                o[d] += w * v.read(vo + d * vs);
            }
        }
        for (int d = 0; d < vdim; d++) {
            o[d] /= sum;
        }
        return max + Math.log(sum);
    }

    private static double nanMax(double a, double b) {
        return Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.max(a, b);
    }
}
