package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.ElementType;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;

/**
 * A naive implementation of attention in a problem's own precision, the yardstick of rule 51 (the
 * FlashAttention criterion: a backend's error against the float64 oracle at most 2× (forward) or 3×
 * (gradients) this implementation's). Written as FlashAttention's {@code attention_ref} computes in a
 * low precision: every operation's result is rounded to the precision ({@code round}: identity for
 * fp32, 10 mantissa bits for tf32, bf16 and fp16 by {@link ElementType#round}), sums are sequential in
 * float32. Forward, per row {@code i} over its allowed keys ({@link TokenMask#logWeight}, in key order):
 * {@code sⱼ = round(s·Σ_d round(qᵢd)·round(kⱼd) + ln cⱼ)}, {@code m = max sⱼ}, {@code wⱼ = exp(sⱼ − m)},
 * {@code l = Σ wⱼ}, {@code Pⱼ = round(wⱼ / l)}, {@code Oᵢ = round(Σⱼ Pⱼ·round(vⱼ))}; a row with no key gives 0.
 * Backward, with {@code P = round(exp(sⱼ − LSEᵢ))} from the given LSE (as the backward's contract has it) and
 * the given {@code O}: {@code Dᵢ = Σ dOᵢ·Oᵢ},
 * {@code dSᵢⱼ = Pᵢⱼ·(dOᵢ·vⱼ − Dᵢ)}, {@code dQᵢ = s·Σⱼ dSᵢⱼ·kⱼ}, {@code dKⱼ = s·Σᵢ dSᵢⱼ·qᵢ},
 * {@code dVⱼ = Σᵢ Pᵢⱼ·dOᵢ}, in float32, rows in order, each result rounded. Cost {@code O(B·Hq·Nq·Nk·(D + Dv))}:
 * for test sizes only.
 */
public final class NaiveAttention {

    private NaiveAttention() {
    }

    /**
     * @param precision the precision
     * @param x a float32 value
     * @return {@code x} rounded to the precision (nearest, ties to even), as a float
     */
    public static float round(Precision precision, float x) {
        return switch (precision) {
            case FP32 -> x;
            case TF32 -> {
                int bits = Float.floatToRawIntBits(x);
                if ((bits & 0x7f800000) == 0x7f800000) {
                    yield x;
                }
                yield Float.intBitsToFloat((bits + 0xfff + ((bits >>> 13) & 1)) & ~0x1fff);
            }
            case BF16 -> ElementType.BF16.widen(ElementType.BF16.round(x));
            case FP16 -> ElementType.FP16.widen(ElementType.FP16.round(x));
        };
    }

    /**
     * Row {@code i}'s rounded softmax weights over its allowed keys, normalised by their own sum, or with a
     * given {@code lse} (not NaN) as {@code round(exp(sⱼ − lse))}; returns how many keys it reads.
     */
    private static int weights(AttentionProblem p, TokenMask mask, Tensor q, Tensor k, int b, int h, int i, float[] prob,
                               int[] keys, float lse) {
        Precision pr = p.precision();
        int kvh = p.kvHeadOf(h);
        int n = 0;
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < p.keyLength(); j++) {
            double logWeight = mask.logWeight(b, h, i, j);
            if (logWeight == Double.NEGATIVE_INFINITY) {
                continue;
            }
            float dot = 0;
            for (int d = 0; d < p.headDim(); d++) {
                dot += round(pr, q.get(b, h, i, d)) * round(pr, k.get(b, kvh, j, d));
            }
            float s = round(pr, (float) (p.scale() * dot + logWeight));
            prob[n] = s;
            keys[n++] = j;
            max = Math.max(max, s);
        }
        if (!Float.isNaN(lse)) {
            for (int x = 0; x < n; x++) {
                prob[x] = round(pr, (float) Math.exp(prob[x] - lse));
            }
            return n;
        }
        float sum = 0;
        for (int x = 0; x < n; x++) {
            prob[x] = (float) Math.exp(prob[x] - max);
            sum += prob[x];
        }
        for (int x = 0; x < n; x++) {
            prob[x] = round(pr, prob[x] / sum);
        }
        return n;
    }

    /**
     * The forward output.
     *
     * @param p the problem (its precision is the one computed in). Not modified.
     * @param layout the layout. Not modified.
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @return {@code O} in BHSD order, {@code [B, Hq, Nq, Dv]}
     */
    public static float[] forward(AttentionProblem p, BlockLayout layout, Tensor q, Tensor k, Tensor v) {
        TokenMask mask = TokenMask.of(p, layout);
        Precision pr = p.precision();
        int vdim = p.valueDim();
        float[] out = new float[p.batch() * p.queryHeads() * p.queryLength() * vdim];
        float[] prob = new float[p.keyLength()];
        int[] keys = new int[p.keyLength()];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    int n = weights(p, mask, q, k, b, h, i, prob, keys, Float.NaN);
                    int row = ((b * p.queryHeads() + h) * p.queryLength() + i) * vdim;
                    for (int d = 0; d < vdim; d++) {
                        float acc = 0;
                        for (int x = 0; x < n; x++) {
                            acc += prob[x] * round(pr, v.get(b, p.kvHeadOf(h), keys[x], d));
                        }
                        out[row + d] = round(pr, acc);
                    }
                }
            }
        }
        return out;
    }

    /**
     * The gradients, given the forward output {@code out} and the LSE a backend's backward is given
     * ({@code P = round(exp(sⱼ − LSEᵢ))}, as the backward's contract computes it).
     *
     * @param p the problem. Not modified.
     * @param layout the layout. Not modified.
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param out the forward output. Not modified.
     * @param lse the forward LSE {@code [B, Hq, Nq]}. Not modified.
     * @param dOut the output gradient. Not modified.
     * @return {@code {dq, dk, dv}} in BHSD order
     */
    public static float[][] backward(AttentionProblem p, BlockLayout layout, Tensor q, Tensor k, Tensor v, Tensor out,
                                     float[] lse, Tensor dOut) {
        TokenMask mask = TokenMask.of(p, layout);
        Precision pr = p.precision();
        int dim = p.headDim();
        int vdim = p.valueDim();
        int nk = p.keyLength();
        float[] dq = new float[p.batch() * p.queryHeads() * p.queryLength() * dim];
        float[] dk = new float[p.batch() * p.kvHeads() * nk * dim];
        float[] dv = new float[p.batch() * p.kvHeads() * nk * vdim];
        float[] prob = new float[nk];
        int[] keys = new int[nk];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kvh = p.kvHeadOf(h);
                for (int i = 0; i < p.queryLength(); i++) {
                    int n = weights(p, mask, q, k, b, h, i, prob, keys, lse[mask.lseIndex(b, h, i)]);
                    float delta = 0;
                    for (int d = 0; d < vdim; d++) {
                        delta += round(pr, dOut.get(b, h, i, d)) * out.get(b, h, i, d);
                    }
                    int qRow = ((b * p.queryHeads() + h) * p.queryLength() + i) * dim;
                    for (int x = 0; x < n; x++) {
                        int j = keys[x];
                        int key = (b * p.kvHeads() + kvh) * nk + j;
                        float dp = 0;
                        for (int d = 0; d < vdim; d++) {
                            float g = round(pr, dOut.get(b, h, i, d));
                            dp += g * round(pr, v.get(b, kvh, j, d));
                            dv[key * vdim + d] += prob[x] * g;
                        }
                        float ds = prob[x] * (dp - delta);
                        for (int d = 0; d < dim; d++) {
                            dq[qRow + d] += p.scale() * ds * round(pr, k.get(b, kvh, j, d));
                            dk[key * dim + d] += p.scale() * ds * round(pr, q.get(b, h, i, d));
                        }
                    }
                }
            }
        }
        for (float[] g : new float[][] {dq, dk, dv}) {
            for (int x = 0; x < g.length; x++) {
                g[x] = round(pr, g[x]);
            }
        }
        return new float[][] {dq, dk, dv};
    }
}
