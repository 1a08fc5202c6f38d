package dev.starling.backend.reference;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import java.util.Arrays;

/**
 * Attention for one query block with the online (streaming) softmax: walks the block's allowed
 * key blocks, keeping per row a running maximum {@code m}, a running sum {@code l} and an
 * unnormalised output row, rescaled by {@code exp(m_old − m_new)} when the maximum grows. Memory
 * is one query block's output plus one key block's scores, whatever the sequence length.
 *
 * <p>Scores are computed against a transposed copy of the key block so the innermost loops run
 * over contiguous memory (and vectorise). One instance per worker and call: not thread-safe.
 */
final class BlockKernel {
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final boolean causal;
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor out;
    private final float[] lse;
    private final int dim;
    private final int vdim;
    private final int kBlock;
    private final int shift;
    private final float scale;

    private final float[] keysT;
    private final float[] scores;
    private final float[] acc;
    private final float[] qrow;
    private final double[] rowMax;
    private final double[] rowSum;

    BlockKernel(AttentionProblem problem, BlockLayout layout, boolean causal, Tensor q, Tensor k, Tensor v, Tensor out,
                float[] lse) {
        this.problem = problem;
        this.layout = layout;
        this.causal = causal;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.lse = lse;
        this.dim = problem.headDim();
        this.vdim = problem.valueDim();
        this.kBlock = layout.keyBlock();
        this.shift = problem.keyLength() - problem.queryLength();
        this.scale = problem.scale();
        int qBlock = layout.queryBlock();
        this.keysT = new float[dim * kBlock];
        this.scores = new float[kBlock];
        this.acc = new float[qBlock * vdim];
        this.qrow = new float[dim];
        this.rowMax = new double[qBlock];
        this.rowSum = new double[qBlock];
    }

    void run(int b, int h, int qb) {
        int i0 = qb * layout.queryBlock();
        int i1 = Math.min(problem.queryLength(), i0 + layout.queryBlock());
        int iValid = Math.min(i1, problem.queryLength(b));
        int rows = Math.max(0, iValid - i0);
        int kvh = problem.kvHeadOf(h);
        int keyEnd = problem.keyLength(b);
        Arrays.fill(acc, 0, rows * vdim, 0f);
        Arrays.fill(rowMax, 0, rows, Double.NEGATIVE_INFINITY);
        Arrays.fill(rowSum, 0, rows, 0.0);

        float[] kd = k.data();
        float[] vd = v.data();
        float[] qd = q.data();
        int kStride = k.rowStride();
        int vStride = v.rowStride();
        int qStride = q.rowStride();
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb) && rows > 0; p++) {
            int j0 = layout.keyBlock(h, p) * kBlock;
            int j1 = Math.min(Math.min(problem.keyLength(), j0 + kBlock), keyEnd);
            if (causal) {
                j1 = Math.min(j1, iValid - 1 + shift + 1);
            }
            int nj = j1 - j0;
            if (nj <= 0) {
                continue;
            }
            // Transposed key block: keysT[d * kBlock + jj] = k[j0 + jj][d].
            int kBase = k.offset(b, kvh, j0);
            for (int jj = 0; jj < nj; jj++) {
                int src = kBase + jj * kStride;
                for (int d = 0; d < dim; d++) {
                    keysT[d * kBlock + jj] = kd[src + d];
                }
            }
            int vBase = v.offset(b, kvh, j0);
            for (int r = 0; r < rows; r++) {
                int i = i0 + r;
                int nr = causal ? Math.min(nj, i + shift + 1 - j0) : nj;
                if (nr <= 0) {
                    continue;
                }
                int qOff = q.offset(b, h, i0) + r * qStride;
                for (int d = 0; d < dim; d++) {
                    qrow[d] = qd[qOff + d] * scale;
                }
                Arrays.fill(scores, 0, nr, 0f);
                // Four feature rows per pass: a quarter of the loads and stores of the score row.
                int d = 0;
                for (; d + 3 < dim; d += 4) {
                    float q0 = qrow[d];
                    float q1 = qrow[d + 1];
                    float q2 = qrow[d + 2];
                    float q3 = qrow[d + 3];
                    int b0 = d * kBlock;
                    int b1 = b0 + kBlock;
                    int b2 = b1 + kBlock;
                    int b3 = b2 + kBlock;
                    for (int jj = 0; jj < nr; jj++) {
                        scores[jj] += q0 * keysT[b0 + jj] + q1 * keysT[b1 + jj] + q2 * keysT[b2 + jj]
                                + q3 * keysT[b3 + jj];
                    }
                }
                for (; d < dim; d++) {
                    float qv = qrow[d];
                    int base = d * kBlock;
                    for (int jj = 0; jj < nr; jj++) {
                        scores[jj] += qv * keysT[base + jj];
                    }
                }
                float blockMax = Float.NEGATIVE_INFINITY;
                for (int jj = 0; jj < nr; jj++) {
                    blockMax = nanMax(blockMax, scores[jj]);
                }
                double mOld = rowMax[r];
                double mNew = nanMax(mOld, blockMax);
                double correction = mOld == Double.NEGATIVE_INFINITY ? 0.0 : Math.exp(mOld - mNew);
                double sum = 0;
                for (int jj = 0; jj < nr; jj++) {
                    float pj = (float) Math.exp(scores[jj] - mNew);
                    scores[jj] = pj;
                    sum += pj;
                }
                rowSum[r] = rowSum[r] * correction + sum;
                rowMax[r] = mNew;
                int a = r * vdim;
                if (correction != 1.0) {
                    float c = (float) correction;
                    for (int dv = 0; dv < vdim; dv++) {
                        acc[a + dv] *= c;
                    }
                }
                // Four keys per pass: a quarter of the loads and stores of the output row.
                int jj = 0;
                for (; jj + 3 < nr; jj += 4) {
                    float p0 = scores[jj];
                    float p1 = scores[jj + 1];
                    float p2 = scores[jj + 2];
                    float p3 = scores[jj + 3];
                    int v0 = vBase + jj * vStride;
                    int v1 = v0 + vStride;
                    int v2 = v1 + vStride;
                    int v3 = v2 + vStride;
                    for (int dv = 0; dv < vdim; dv++) {
                        acc[a + dv] += p0 * vd[v0 + dv] + p1 * vd[v1 + dv] + p2 * vd[v2 + dv] + p3 * vd[v3 + dv];
                    }
                }
                for (; jj < nr; jj++) {
                    float pj = scores[jj];
                    int vOff = vBase + jj * vStride;
                    for (int dv = 0; dv < vdim; dv++) {
                        acc[a + dv] += pj * vd[vOff + dv];
                    }
                }
            }
        }
        write(b, h, i0, i1, rows);
    }

    private static float nanMax(float a, float b) {
        return a != a || b != b ? Float.NaN : Math.max(a, b);
    }

    private static double nanMax(double a, double b) {
        return a != a || b != b ? Double.NaN : Math.max(a, b);
    }

    private void write(int b, int h, int i0, int i1, int rows) {
        float[] od = out.data();
        int oStride = out.rowStride();
        int oBase = out.offset(b, h, i0);
        int lBase = (b * problem.queryHeads() + h) * problem.queryLength() + i0;
        for (int r = 0; r < i1 - i0; r++) {
            int o = oBase + r * oStride;
            double l = r < rows ? rowSum[r] : 0.0;
            if (l == 0.0) {
                // No allowed key (or a padded query row): O = 0, LSE = -inf, never NaN.
                Arrays.fill(od, o, o + vdim, 0f);
                if (lse != null) {
                    lse[lBase + r] = Float.NEGATIVE_INFINITY;
                }
                continue;
            }
            float inv = (float) (1.0 / l);
            int a = r * vdim;
            for (int dv = 0; dv < vdim; dv++) {
                od[o + dv] = acc[a + dv] * inv;
            }
            if (lse != null) {
                lse[lBase + r] = (float) (rowMax[r] + Math.log(l));
            }
        }
    }
}
