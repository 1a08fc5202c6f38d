package dev.starling.backend.vector;

import dev.starling.api.Tensor;
import dev.starling.api.plan.TokenMask;

/**
 * A worker's fused attention kernel for up to {@code rows} query rows at a time, as {@link VectorPlan}
 * drives it: {@link #begin}, then {@link #block} for each allowed key block of the rows' query
 * block, then {@link #finish} (a whole row) or {@link #save} (a part of a split row, merged later by
 * {@link #finishSplit}). The running state per row is the online softmax of
 * {@link dev.starling.api.plan.OnlineSoftmax}: maximum {@code m}, sum {@code l = Σ exp(s − m)} and
 * unnormalised output {@code acc = Σ exp(s − m)·v}.
 *
 * <p>Internal to this module (public only so that its implementation on the Vector API,
 * {@code dev.starling.backend.vector.kernel.TileKernel}, can live in a package of its own): the
 * rest of the module names that class only inside method bodies, so the provider loads, and the
 * Javadoc tool runs, without {@code jdk.incubator.vector}. One instance per worker: not thread-safe.
 */
public interface AttentionKernel {

    /**
     * Starts rows {@code i0 .. i0+rows)} of {@code (b, h)}: loads {@code s·Q} for them and empties
     * their state ({@code m = −∞}, {@code l = 0}, {@code acc = 0}, no key read).
     *
     * @param q queries {@code [B, Hq, Nq, D]}. Not modified.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param rows valid rows (0 when all are padding)
     * @param scale {@code s}
     */
    void begin(Tensor q, int b, int h, int i0, int rows, float scale);

    /**
     * Folds the keys of key block {@code kb} that each current row may read ({@link TokenMask})
     * into its state: {@code S = s·q·kᵀ + w}, new maximum, {@code l} and {@code acc} rescaled by
     * {@code exp(m − m')} plus this block's {@code Σ exp(S − m')} and {@code Σ exp(S − m')·v}.
     *
     * @param mask the plan's token mask
     * @param b batch entry
     * @param qb query block of the current rows
     * @param kb key block, allowed for {@code qb} by the layout
     * @param i0 first current row
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param kvh key/value head of {@code h}
     * @param logWeight {@code w}, the block's log-weight {@link TokenMask#logWeight(int, int) ln c} (0 without counts)
     */
    void block(TokenMask mask, int b, int qb, int kb, int i0, Tensor k, Tensor v, int kvh, float logWeight);

    /**
     * Writes the current rows: {@code O = acc / l}, {@code LSE = m + ln l}, with the policy of
     * {@link dev.starling.api.plan.OnlineSoftmax} for rows that read nothing or whose maximum is not
     * finite, and {@code O = 0}, {@code LSE = −∞} for padded rows {@code [rows, total)}.
     *
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified: rows {@code i0 .. i0+total)} of {@code (b, h)}.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param total rows to write, valid and padded
     * @param lse {@code [B, Hq, Nq]} or {@code null}. Modified likewise.
     * @param lseBase index of row {@code i0} in {@code lse}
     */
    void finish(Tensor out, int b, int h, int i0, int total, float[] lse, int lseBase);

    /**
     * Saves the current rows' unnormalised state (a part of a split row): valid row {@code r} at
     * index {@code base + r} of the scalar arrays and at {@code (base + r)·Dv} of {@code partAcc}.
     *
     * @param partMax running maxima. Modified.
     * @param partSum running sums. Modified.
     * @param partSeen whether the row read any key. Modified.
     * @param partAcc unnormalised outputs, row-major {@code [row][Dv]}. Modified.
     * @param base index of the first current row
     */
    void save(float[] partMax, double[] partSum, boolean[] partSeen, float[] partAcc, int base);

    /**
     * Merges the saved parts of a split row exactly ({@link dev.starling.api.plan.OnlineSoftmax.Rows#absorb})
     * and writes it as {@link #finish} does.
     *
     * @param partMax running maxima saved by {@link #save}. Not modified.
     * @param partSum running sums. Not modified.
     * @param partSeen whether each part's row read a key. Not modified.
     * @param partAcc unnormalised outputs. Not modified.
     * @param firstBase index of row 0 of the first part; part {@code x} starts {@code x·partStride} later
     * @param parts number of parts
     * @param partStride rows between parts
     * @param out output. Modified: the rows of the query block.
     * @param b batch entry
     * @param h query head
     * @param i0 first row of the query block
     * @param total rows of the query block
     * @param valid valid rows
     * @param lse LSE or {@code null}. Modified likewise.
     * @param lseBase index of row {@code i0} in {@code lse}
     */
    void finishSplit(float[] partMax, double[] partSum, boolean[] partSeen, float[] partAcc, int firstBase, int parts,
                     int partStride, Tensor out, int b, int h, int i0, int total, int valid, float[] lse, int lseBase);
}
