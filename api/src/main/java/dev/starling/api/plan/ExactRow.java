package dev.starling.api.plan;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;

/**
 * One output row computed plainly, key by key, on {@link TokenMask} and {@link OnlineSoftmax}: the
 * exact path for the rows a fast kernel hands back, e.g. rows that read a non-finite input when the
 * kernel sanitised its inputs (a batched product would otherwise leak {@code 0·NaN} from masked
 * keys into rows that never read them). Block counts add their {@code ln c} to the scores
 * ({@link TokenMask#logWeight(int, int)}). Scores in float64, outputs in float32. Slow; meant for a
 * few rows.
 */
public final class ExactRow {

    private ExactRow() {
    }

    /**
     * Computes {@code O[b, h, i, :]} and {@code LSE[b, h, i]} exactly as DESIGN section 2 says.
     *
     * @param mask the token mask of the plan
     * @param q queries {@code [B, Hq, Nq, D]}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param b batch entry
     * @param h query head
     * @param i query row
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified: row {@code (b, h, i)} only.
     * @param lse {@code [B, Hq, Nq]} or {@code null}. Modified: entry {@code (b, h, i)} only.
     */
    public static void compute(TokenMask mask, Tensor q, Tensor k, Tensor v, int b, int h, int i, Tensor out,
                               float[] lse) {
        AttentionProblem p = mask.problem();
        BlockLayout layout = mask.layout();
        int dim = p.headDim();
        int vdim = p.valueDim();
        int kvh = p.kvHeadOf(h);
        double scale = p.scale();
        OnlineSoftmax.Rows state = new OnlineSoftmax.Rows(1, vdim);
        float[] acc = state.acc();
        int qb = i / layout.queryBlock();
        if (i < p.queryLength(b)) {
            for (int pos = layout.rowBegin(h, qb); pos < layout.rowEnd(h, qb); pos++) {
                int kb = layout.keyBlock(h, pos);
                int j0 = mask.keyBegin(kb);
                int j1 = mask.keyEnd(b, i, kb);
                if (j1 <= j0) {
                    continue;
                }
                double[] scores = new double[j1 - j0];
                double blockMax = Double.NEGATIVE_INFINITY;
                double logWeight = mask.logWeight(h, pos);
                for (int j = j0; j < j1; j++) {
                    double dot = 0;
                    for (int d = 0; d < dim; d++) {
                        dot += (double) q.get(b, h, i, d) * k.get(b, kvh, j, d);
                    }
                    scores[j - j0] = logWeight == 0 ? scale * dot : scale * dot + logWeight;
                    blockMax = OnlineSoftmax.max(blockMax, scores[j - j0]);
                }
                double shift = state.raise(0, blockMax);
                double sum = 0;
                for (int j = j0; j < j1; j++) {
                    double w = Math.exp(scores[j - j0] - shift);
                    sum += w;
                    for (int d = 0; d < vdim; d++) {
                        acc[d] += (float) (w * v.get(b, kvh, j, d));
                    }
                }
                state.add(0, sum);
            }
        }
        float[] row = new float[vdim];
        state.finish(0, row, 0, lse, mask.lseIndex(b, h, i));
        for (int d = 0; d < vdim; d++) {
            out.write(out.index(b, h, i, d), row[d]);
        }
    }
}
