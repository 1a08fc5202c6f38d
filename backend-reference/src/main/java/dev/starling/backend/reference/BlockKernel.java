package dev.starling.backend.reference;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;

/**
 * Attention for one query block with the online (streaming) softmax of {@link OnlineSoftmax}: walks
 * the block's allowed key blocks, reading per row exactly the key range the {@link TokenMask} gives
 * it. Memory is one query block's output plus one key block's scores, whatever the sequence length.
 * A block with a count {@code c > 1} adds {@code ln c} to its scores ({@link TokenMask#logWeight(int, int)}).
 *
 * <p>Scores are computed against a transposed copy of the key block so the innermost loops run
 * over contiguous memory (and vectorise). One instance per worker and call: not thread-safe.
 */
final class BlockKernel {
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final TokenMask mask;
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor out;
    private final float[] lse;
    private final int dim;
    private final int vdim;
    private final int kBlock;
    private final float scale;

    private final float[] keysT;
    private final float[] scores;
    private final float[] qrow;
    private final OnlineSoftmax.Rows state;

    BlockKernel(TokenMask mask, Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        this.problem = mask.problem();
        this.layout = mask.layout();
        this.mask = mask;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.lse = lse;
        this.dim = problem.headDim();
        this.vdim = problem.valueDim();
        // Scratch is sized by what a block can hold, never by a block size larger than the sequence.
        this.kBlock = Math.min(layout.keyBlock(), problem.keyLength());
        this.scale = problem.scale();
        int qBlock = Math.min(layout.queryBlock(), problem.queryLength());
        this.keysT = new float[Math.multiplyExact(dim, kBlock)];
        this.scores = new float[kBlock];
        this.qrow = new float[dim];
        this.state = new OnlineSoftmax.Rows(qBlock, vdim);
    }

    void run(int b, int h, int qb) {
        int i0 = mask.queryBegin(qb);
        int i1 = mask.queryEnd(qb);
        int rows = mask.validQueryEnd(b, qb) - i0;
        int kvh = problem.kvHeadOf(h);
        state.reset(rows);
        float[] acc = state.acc();

        float[] kd = k.data();
        float[] vd = v.data();
        float[] qd = q.data();
        int kStride = k.rowStride();
        int vStride = v.rowStride();
        int qStride = q.rowStride();
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb) && rows > 0; p++) {
            int kb = layout.keyBlock(h, p);
            int j0 = mask.keyBegin(kb);
            int nj = mask.blockKeyEnd(b, qb, kb) - j0;
            if (nj <= 0) {
                continue;
            }
            // Block multiplicity: ln c on every score of the block (0, and no pass, without counts).
            float logWeight = (float) mask.logWeight(h, p);
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
                int nr = mask.keyEnd(b, i0 + r, kb) - j0;
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
                if (logWeight != 0f) {
                    for (int jj = 0; jj < nr; jj++) {
                        scores[jj] += logWeight;
                    }
                }
                float blockMax = Float.NEGATIVE_INFINITY;
                for (int jj = 0; jj < nr; jj++) {
                    blockMax = OnlineSoftmax.max(blockMax, scores[jj]);
                }
                double shift = state.raise(r, blockMax);
                double sum = 0;
                for (int jj = 0; jj < nr; jj++) {
                    float pj = (float) Math.exp(scores[jj] - shift);
                    scores[jj] = pj;
                    sum += pj;
                }
                state.add(r, sum);
                int a = r * vdim;
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
        float[] od = out.data();
        int oStride = out.rowStride();
        int oBase = out.offset(b, h, i0);
        int lBase = mask.lseIndex(b, h, i0);
        for (int r = 0; r < i1 - i0; r++) {
            if (r < rows) {
                state.finish(r, od, oBase + r * oStride, lse, lBase + r);
            } else {
                OnlineSoftmax.empty(od, oBase + r * oStride, vdim, lse, lBase + r);
            }
        }
    }
}
