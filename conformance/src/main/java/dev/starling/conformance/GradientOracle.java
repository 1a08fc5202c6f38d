package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;

/**
 * The definition of the backward pass: gradients of dense masked attention in float64 over exactly
 * the allowed sets of DESIGN section 2 ({@link TokenMask#allowed}), written plainly from the
 * formulas of DESIGN section 4 — {@code P} the softmax over {@code A(i)}, {@code Dᵢ = Σ dOᵢ·Oᵢ},
 * {@code dSᵢⱼ = Pᵢⱼ·(dOᵢ·vⱼ − Dᵢ)}, {@code dQᵢ = s·Σⱼ dSᵢⱼ·kⱼ}, {@code dKⱼ = s·Σᵢ dSᵢⱼ·qᵢ},
 * {@code dVⱼ = Σᵢ Pᵢⱼ·dOᵢ}, summed over the query heads of a key/value head; with block counts,
 * {@code P} is the softmax of the scores plus their log-weights {@code ln c} (DESIGN section 2), so these
 * are the gradients of that function. Empty rows contribute
 * nothing. Its cost is {@code O(B·Hq·Nq·Nk·(D + Dv))}: for test sizes only. The kit's self-test
 * checks it against central finite differences of {@link #forward}.
 *
 * <p><b>Non-finite inputs</b> (the policy conformance rule 30 checks, element by element): the result
 * is exactly what these formulas give in IEEE float64 arithmetic, every sum taken over every allowed
 * pair of a row (pairs of zero weight included) and over nothing else. So a row whose softmax is NaN
 * (a NaN or {@code +∞} score, or every score {@code −∞}: the forward policy of DESIGN section 2) makes
 * its {@code dq} row NaN and every feature of {@code dk} and {@code dv} of every key it reads NaN; a
 * NaN in feature {@code d} of {@code dOᵢ} makes {@code Dᵢ} and so {@code dq} of row {@code i} and
 * {@code dk} of every key it reads NaN, but only feature {@code d} of those keys' {@code dv}; a
 * non-finite {@code kⱼ} feature reaches {@code dq} (even through a zero weight: {@code 0·∞ = NaN})
 * of exactly the rows that read {@code j}. Rows and keys outside every allowed pair of the bad
 * element never see it: a query row with no allowed key (empty or padded) contributes nothing, a
 * key no row reads gets exact zeros, whatever {@code q}, {@code k}, {@code v} and {@code dOut} hold
 * there. The forward output {@code O} in {@code Dᵢ} is recomputed here from the inputs, as the dense
 * oracle computes it.
 */
public final class GradientOracle {

    private GradientOracle() {
    }

    /**
     * Gradients in BHSD order, each with the size of its terms: element {@code x} of a gradient is a
     * sum of terms, and {@code xTerms} bounds the sum of their magnitudes, the quantity a correct
     * floating-point kernel's rounding error is proportional to (an element whose terms cancel to
     * nearly zero still carries the rounding error of its largest terms). With
     * {@code aᵢⱼ = Pᵢⱼ·(1 + Σ_d |s·qᵢd·kⱼd| + |LSEᵢ|)} (the weight and the size of the numbers its
     * exponential is computed from) and {@code mᵢⱼ = aᵢⱼ·(Σ_d |dOᵢd·vⱼd| + Σ_d |dOᵢd·Oᵢd|)} (the size of
     * {@code dSᵢⱼ}'s terms): {@code dqTerms = |s|·Σⱼ mᵢⱼ·|kⱼ|}, {@code dkTerms = |s|·Σᵢ mᵢⱼ·|qᵢ|},
     * {@code dvTerms = Σᵢ aᵢⱼ·|dOᵢ|}, each over the allowed pairs.
     *
     * @param dq {@code [B, Hq, Nq, D]}
     * @param dk {@code [B, Hkv, Nk, D]}
     * @param dv {@code [B, Hkv, Nk, Dv]}
     * @param dqTerms the size of {@code dq}'s terms, same shape (all zero when not computed)
     * @param dkTerms the size of {@code dk}'s terms, same shape
     * @param dvTerms the size of {@code dv}'s terms, same shape
     */
    public record Result(double[] dq, double[] dk, double[] dv, double[] dqTerms, double[] dkTerms,
                         double[] dvTerms) {
        /**
         * Gradients without the size of their terms (taken as zero: the comparison then uses only
         * the RMS and relative parts of the tolerance).
         *
         * @param dq {@code [B, Hq, Nq, D]}
         * @param dk {@code [B, Hkv, Nk, D]}
         * @param dv {@code [B, Hkv, Nk, Dv]}
         */
        public Result(double[] dq, double[] dk, double[] dv) {
            this(dq, dk, dv, new double[dq.length], new double[dk.length], new double[dv.length]);
        }
    }

    /**
     * Computes {@code dL/dQ}, {@code dL/dK}, {@code dL/dV} for a loss whose output gradient is {@code dOut}.
     *
     * @param p the problem. Not modified.
     * @param layout the layout. Not modified.
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param dOut output gradient {@code [B, Hq, Nq, Dv]}. Not modified.
     * @return the float64 gradients
     */
    public static Result compute(AttentionProblem p, BlockLayout layout, Tensor q, Tensor k, Tensor v, Tensor dOut) {
        return compute(p, layout, bhsd(q), bhsd(k), bhsd(v), bhsd(dOut), false);
    }

    /**
     * The gradients with term sizes for scores that are exact in float32 (small integers times a
     * power-of-two scale, rule 43): each pair's weight is then {@code aᵢⱼ = Pᵢⱼ} alone, without the
     * {@code Σ|s·q·k| + |LSE|} part that allows for rounded scores, so the allowance does not grow
     * with the logits.
     *
     * @param p the problem. Not modified.
     * @param layout the layout. Not modified.
     * @param q queries, every score {@code s·qᵢ·kⱼ} exact in float32. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param dOut output gradient {@code [B, Hq, Nq, Dv]}. Not modified.
     * @return the float64 gradients
     */
    public static Result computeExactScores(AttentionProblem p, BlockLayout layout, Tensor q, Tensor k, Tensor v,
                                            Tensor dOut) {
        return compute(p, layout, bhsd(q), bhsd(k), bhsd(v), bhsd(dOut), true);
    }

    /** {@link #compute(AttentionProblem, BlockLayout, double[], double[], double[], double[], boolean)} for rounded scores. */
    static Result compute(AttentionProblem p, BlockLayout layout, double[] q, double[] k, double[] v, double[] dOut) {
        return compute(p, layout, q, k, v, dOut, false);
    }

    /**
     * The same on BHSD float64 arrays (for finite differences).
     *
     * @param p the problem. Not modified.
     * @param layout the layout. Not modified.
     * @param q queries, BHSD. Not modified.
     * @param k keys, BHSD. Not modified.
     * @param v values, BHSD. Not modified.
     * @param dOut output gradient, BHSD. Not modified.
     * @param exactScores whether the scores are exact in float32 ({@link #computeExactScores})
     * @return the float64 gradients
     */
    static Result compute(AttentionProblem p, BlockLayout layout, double[] q, double[] k, double[] v, double[] dOut,
                          boolean exactScores) {
        TokenMask mask = TokenMask.of(p, layout);
        int nq = p.queryLength();
        int nk = p.keyLength();
        int dim = p.headDim();
        int vdim = p.valueDim();
        double s = p.scale();
        double[] dq = new double[q.length];
        double[] dk = new double[k.length];
        double[] dv = new double[v.length];
        double[] dqTerms = new double[q.length];
        double[] dkTerms = new double[k.length];
        double[] dvTerms = new double[v.length];
        double[] prob = new double[nk];
        int[] allowed = new int[nk];
        double[] o = new double[vdim];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kvh = p.kvHeadOf(h);
                int kBase = (b * p.kvHeads() + kvh) * nk;
                for (int i = 0; i < nq; i++) {
                    int row = (b * p.queryHeads() + h) * nq + i;
                    int n = softmax(mask, b, h, i, q, row * dim, k, kBase, dim, s, prob, allowed);
                    if (n == 0) {
                        continue;
                    }
                    // O over the allowed keys only: a key the row does not read adds nothing, not even 0·NaN.
                    java.util.Arrays.fill(o, 0);
                    for (int x = 0; x < n; x++) {
                        int j = allowed[x];
                        for (int d = 0; d < vdim; d++) {
                            o[d] += prob[j] * v[(kBase + j) * vdim + d];
                        }
                    }
                    double delta = 0;
                    double deltaTerms = 0;
                    for (int d = 0; d < vdim; d++) {
                        delta += dOut[row * vdim + d] * o[d];
                        deltaTerms += Math.abs(dOut[row * vdim + d] * o[d]);
                    }
                    double lse = rowLse(mask, b, h, i, q, row * dim, k, kBase, dim, s, prob, allowed, n);
                    for (int x = 0; x < n; x++) {
                        int j = allowed[x];
                        double dp = 0;
                        double dpTerms = 0;
                        double logitTerms = 0;
                        for (int d = 0; d < dim; d++) {
                            logitTerms += Math.abs(s * q[row * dim + d] * k[(kBase + j) * dim + d]);
                        }
                        double weight = exactScores ? prob[j] : prob[j] * (1 + logitTerms + Math.abs(lse));
                        for (int d = 0; d < vdim; d++) {
                            dp += dOut[row * vdim + d] * v[(kBase + j) * vdim + d];
                            dpTerms += Math.abs(dOut[row * vdim + d] * v[(kBase + j) * vdim + d]);
                            dv[(kBase + j) * vdim + d] += prob[j] * dOut[row * vdim + d];
                            dvTerms[(kBase + j) * vdim + d] += weight * Math.abs(dOut[row * vdim + d]);
                        }
                        double ds = prob[j] * (dp - delta);
                        double dsTerms = Math.abs(s) * weight * (dpTerms + deltaTerms);
                        for (int d = 0; d < dim; d++) {
                            dq[row * dim + d] += s * ds * k[(kBase + j) * dim + d];
                            dk[(kBase + j) * dim + d] += s * ds * q[row * dim + d];
                            dqTerms[row * dim + d] += dsTerms * Math.abs(k[(kBase + j) * dim + d]);
                            dkTerms[(kBase + j) * dim + d] += dsTerms * Math.abs(q[row * dim + d]);
                        }
                    }
                }
            }
        }
        return new Result(dq, dk, dv, dqTerms, dkTerms, dvTerms);
    }

    /**
     * The row's log-sum-exp from its normalised weights: {@code LSE = s·qᵢ·kⱼ + ln c − ln Pᵢⱼ} at its
     * largest weight (only its size enters the term sizes of {@link Result}).
     */
    private static double rowLse(TokenMask mask, int b, int h, int i, double[] q, int qOff, double[] k, int kBase, int dim, double scale, double[] prob,
                                 int[] allowed, int n) {
        int best = allowed[0];
        for (int x = 1; x < n; x++) {
            if (prob[allowed[x]] > prob[best]) {
                best = allowed[x];
            }
        }
        double dot = 0;
        for (int d = 0; d < dim; d++) {
            dot += q[qOff + d] * k[(kBase + best) * dim + d];
        }
        return scale * dot + mask.logWeight(b, h, i, best) - Math.log(prob[best]);
    }

    /**
     * The forward output {@code O} in BHSD float64 from BHSD float64 inputs, the function whose
     * derivatives {@link #compute} gives (for finite differences).
     */
    static double[] forward(AttentionProblem p, BlockLayout layout, double[] q, double[] k, double[] v) {
        TokenMask mask = TokenMask.of(p, layout);
        int nq = p.queryLength();
        int nk = p.keyLength();
        int dim = p.headDim();
        int vdim = p.valueDim();
        double[] out = new double[p.batch() * p.queryHeads() * nq * vdim];
        double[] prob = new double[nk];
        int[] allowed = new int[nk];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kBase = (b * p.kvHeads() + p.kvHeadOf(h)) * nk;
                for (int i = 0; i < nq; i++) {
                    int row = (b * p.queryHeads() + h) * nq + i;
                    int n = softmax(mask, b, h, i, q, row * dim, k, kBase, dim, p.scale(), prob, allowed);
                    for (int x = 0; x < n; x++) {
                        int j = allowed[x];
                        for (int d = 0; d < vdim; d++) {
                            out[row * vdim + d] += prob[j] * v[(kBase + j) * vdim + d];
                        }
                    }
                }
            }
        }
        return out;
    }

    /**
     * Fills {@code prob} with row {@code i}'s softmax over its allowed keys, listed in {@code allowed}
     * (other entries of {@code prob} are left as they were).
     *
     * @return how many keys the row reads (0 for an empty row)
     */
    private static int softmax(TokenMask mask, int b, int h, int i, double[] q, int qOff, double[] k, int kBase,
                               int dim, double scale, double[] prob, int[] allowed) {
        double max = Double.NEGATIVE_INFINITY;
        int n = 0;
        for (int j = 0; j < prob.length; j++) {
            double logWeight = mask.logWeight(b, h, i, j);
            if (logWeight == Double.NEGATIVE_INFINITY) {
                continue;
            }
            double dot = 0;
            for (int d = 0; d < dim; d++) {
                dot += q[qOff + d] * k[(kBase + j) * dim + d];
            }
            prob[j] = logWeight == 0 ? scale * dot : scale * dot + logWeight;
            max = n == 0 ? prob[j] : Math.max(max, prob[j]);
            allowed[n++] = j;
        }
        double sum = 0;
        for (int x = 0; x < n; x++) {
            int j = allowed[x];
            prob[j] = Math.exp(prob[j] - max);
            sum += prob[j];
        }
        for (int x = 0; x < n; x++) {
            prob[allowed[x]] /= sum;
        }
        return n;
    }

    /** A tensor's values in BHSD order as float64. */
    static double[] bhsd(Tensor t) {
        float[] f = t.toLayout(dev.starling.api.TensorLayout.BHSD).data();
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }
}
