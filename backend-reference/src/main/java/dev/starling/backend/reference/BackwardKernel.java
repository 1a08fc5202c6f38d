package dev.starling.backend.reference;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;

/**
 * The backward pass of DESIGN section 4 in two sweeps that each own what they write, so no two
 * workers add into one element and the result does not depend on threads:
 * <ol>
 *   <li>{@link #queryBlock}: per (batch, query head, query block), {@code Dᵢ = Σ dOᵢ·Oᵢ} and
 *       {@code dQᵢ = s·Σⱼ dSᵢⱼ·kⱼ} over the row's allowed keys;</li>
 *   <li>{@link #keyBlock}: per (batch, key/value head, key block), {@code dVⱼ = Σᵢ Pᵢⱼ·dOᵢ} and
 *       {@code dKⱼ = s·Σᵢ dSᵢⱼ·qᵢ} over the query heads of its group and the query blocks that read
 *       it ({@link LayoutColumns}), in a fixed order.</li>
 * </ol>
 * {@code Pᵢⱼ = exp((sᵢⱼ − mᵢ) − ln Σⱼ exp(sᵢⱼ − mᵢ))} with {@code sᵢⱼ = s·qᵢ·kⱼ + ln c} ({@code c} the
 * count of {@code j}'s block, 1 without counts) and {@code mᵢ} the row's largest {@code sᵢⱼ}, both
 * recomputed in float64 in the first sweep (the forward's float32 LSE cannot resolve {@code mᵢ + ln Σ} once
 * scores reach about 1e7, nor float64 at 1e15; this way {@code s − m ≤ 0} and {@code Σⱼ Pᵢⱼ = 1} up to
 * rounding, so huge finite logits give bounded gradients), {@code dSᵢⱼ = Pᵢⱼ·(dOᵢ·vⱼ − Dᵢ)}.
 * Rows with {@code LSE = −∞} (empty) or padded contribute nothing and are skipped (marked in
 * {@code rowSkip}). Every other row adds every allowed pair, also where {@code dO} is zero or the
 * weight is: non-finite inputs then reach exactly the gradients the oracle's formulas give (a NaN
 * {@code Dᵢ} is a NaN, not a mark). Sums in float64. Memory: one row's or one key block's
 * accumulators per worker, plus {@code D}, the marks, the maxima and the log-sums ({@code B·Hq·Nq} each) per call.
 * One instance per worker and call: not thread-safe.
 */
final class BackwardKernel {
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final TokenMask mask;
    private final LayoutColumns columns;
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor out;
    private final float[] lse;
    private final Tensor dOut;
    private final double[] rowDelta;
    private final boolean[] rowSkip;
    private final double[] rowMax;
    private final double[] rowLogSum;
    private final int dim;
    private final int vdim;
    private final double scale;
    private final double[] accQ;
    private final double[] accK;
    private final double[] accV;

    BackwardKernel(TokenMask mask, LayoutColumns columns, Tensor q, Tensor k, Tensor v, Tensor out, float[] lse,
                   Tensor dOut, double[] rowDelta, boolean[] rowSkip, double[] rowMax, double[] rowLogSum) {
        this.problem = mask.problem();
        this.layout = mask.layout();
        this.mask = mask;
        this.columns = columns;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.lse = lse;
        this.dOut = dOut;
        this.rowDelta = rowDelta;
        this.rowSkip = rowSkip;
        this.rowMax = rowMax;
        this.rowLogSum = rowLogSum;
        this.dim = problem.headDim();
        this.vdim = problem.valueDim();
        this.scale = problem.scale();
        int kRows = Math.min(layout.keyBlock(), problem.keyLength());
        this.accQ = new double[dim];
        this.accK = new double[Math.multiplyExact(kRows, dim)];
        this.accV = new double[Math.multiplyExact(kRows, vdim)];
    }

    /** Score {@code s·qᵢ·kⱼ} in float64. */
    private double score(int qOff, int kOff) {
        double dot = 0;
        float[] qd = q.data();
        float[] kd = k.data();
        for (int d = 0; d < dim; d++) {
            dot += (double) qd[qOff + d] * kd[kOff + d];
        }
        return scale * dot;
    }

    /** {@code dOᵢ·vⱼ} in float64. */
    private double outputDot(int dOff, int vOff) {
        double dot = 0;
        float[] g = dOut.data();
        float[] vd = v.data();
        for (int d = 0; d < vdim; d++) {
            dot += (double) g[dOff + d] * vd[vOff + d];
        }
        return dot;
    }

    /** First sweep: D and dQ for the rows of one query block; writes every row of dq in it. */
    void queryBlock(int b, int h, int qb, Tensor dq) {
        int kvh = problem.kvHeadOf(h);
        int valid = mask.validQueryEnd(b, qb);
        float[] dqd = dq.data();
        for (int i = mask.queryBegin(qb); i < mask.queryEnd(qb); i++) {
            int row = mask.lseIndex(b, h, i);
            int dqOff = dq.offset(b, h, i);
            double l = lse[row];
            int gOff = dOut.offset(b, h, i);
            // A padded or empty row reads no key: it contributes nothing anywhere, whatever dO holds.
            rowSkip[row] = i >= valid || l == Double.NEGATIVE_INFINITY;
            if (rowSkip[row]) {
                rowDelta[row] = 0;
                Arrays.fill(dqd, dqOff, dqOff + dim, 0f);
                continue;
            }
            int oOff = out.offset(b, h, i);
            double delta = 0;
            for (int d = 0; d < vdim; d++) {
                delta += (double) dOut.data()[gOff + d] * out.data()[oOff + d];
            }
            rowDelta[row] = delta;
            Arrays.fill(accQ, 0);
            int qOff = q.offset(b, h, i);
            rowStatistics(b, h, i, kvh, qb, qOff, row, l);
            double m = rowMax[row];
            double logSum = rowLogSum[row];
            for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
                int kb = layout.keyBlock(h, p);
                double logWeight = mask.logWeight(h, p);
                for (int j = mask.keyBegin(kb), end = mask.keyEnd(b, i, kb); j < end; j++) {
                    int kOff = k.offset(b, kvh, j);
                    double pij = Math.exp(score(qOff, kOff) + logWeight - m - logSum);
                    double ds = pij * (outputDot(gOff, v.offset(b, kvh, j)) - delta);
                    for (int d = 0; d < dim; d++) {
                        accQ[d] += ds * k.data()[kOff + d];
                    }
                }
            }
            for (int d = 0; d < dim; d++) {
                dqd[dqOff + d] = (float) (scale * accQ[d]);
            }
        }
    }

    /**
     * The row's largest score and {@code ln Σ exp(s − m)} over its allowed keys, into {@link #rowMax} and
     * {@link #rowLogSum}. A row whose forward LSE is not finite (NaN: a NaN or infinite score) keeps it as
     * its shift, so its weights stay NaN as the oracle's are.
     */
    private void rowStatistics(int b, int h, int i, int kvh, int qb, int qOff, int row, double forwardLse) {
        if (!Double.isFinite(forwardLse)) {
            rowMax[row] = forwardLse;
            rowLogSum[row] = 0;
            return;
        }
        double m = Double.NEGATIVE_INFINITY;
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
            int kb = layout.keyBlock(h, p);
            double logWeight = mask.logWeight(h, p);
            for (int j = mask.keyBegin(kb), end = mask.keyEnd(b, i, kb); j < end; j++) {
                m = Math.max(m, score(qOff, k.offset(b, kvh, j)) + logWeight);
            }
        }
        double sum = 0;
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
            int kb = layout.keyBlock(h, p);
            double logWeight = mask.logWeight(h, p);
            for (int j = mask.keyBegin(kb), end = mask.keyEnd(b, i, kb); j < end; j++) {
                sum += Math.exp(score(qOff, k.offset(b, kvh, j)) + logWeight - m);
            }
        }
        boolean finite = m > Double.NEGATIVE_INFINITY && m < Double.POSITIVE_INFINITY;
        rowMax[row] = finite ? m : Double.NaN;
        rowLogSum[row] = finite ? Math.log(sum) : 0;
    }

    /** Second sweep: dK and dV for the keys of one key block; writes every key of dk and dv in it. */
    void keyBlock(int b, int kvh, int kb, Tensor dk, Tensor dv) {
        int j0 = mask.keyBegin(kb);
        int n = mask.keyEnd(kb) - j0;
        Arrays.fill(accK, 0, n * dim, 0);
        Arrays.fill(accV, 0, n * vdim, 0);
        int group = problem.groupSize();
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            for (int c = columns.columnBegin(h, kb); c < columns.columnEnd(h, kb); c++) {
                int qb = columns.queryBlock(h, c);
                double logWeight = columns.logWeight(h, c);
                for (int i = mask.queryBegin(qb), valid = mask.validQueryEnd(b, qb); i < valid; i++) {
                    int row = mask.lseIndex(b, h, i);
                    double m = rowMax[row];
                    double logSum = rowLogSum[row];
                    int end = mask.keyEnd(b, i, kb);
                    if (rowSkip[row] || end <= j0) {
                        continue;
                    }
                    int qOff = q.offset(b, h, i);
                    int gOff = dOut.offset(b, h, i);
                    double delta = rowDelta[row];
                    for (int j = j0; j < end; j++) {
                        int kOff = k.offset(b, kvh, j);
                        double pij = Math.exp(score(qOff, kOff) + logWeight - m - logSum);
                        double ds = pij * (outputDot(gOff, v.offset(b, kvh, j)) - delta);
                        int a = (j - j0) * dim;
                        for (int d = 0; d < dim; d++) {
                            accK[a + d] += ds * q.data()[qOff + d];
                        }
                        int av = (j - j0) * vdim;
                        for (int d = 0; d < vdim; d++) {
                            accV[av + d] += pij * dOut.data()[gOff + d];
                        }
                    }
                }
            }
        }
        for (int j = j0; j < j0 + n; j++) {
            int kOff = dk.offset(b, kvh, j);
            int vOff = dv.offset(b, kvh, j);
            for (int d = 0; d < dim; d++) {
                dk.data()[kOff + d] = (float) (scale * accK[(j - j0) * dim + d]);
            }
            for (int d = 0; d < vdim; d++) {
                dv.data()[vOff + d] = (float) accV[(j - j0) * vdim + d];
            }
        }
    }
}
