package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * One element of {@code q}, {@code k} or {@code v} (or, for the backward pass, {@code dOut}) set to
 * NaN, {@code +∞} or {@code −∞}: what rules 20 and 30 inject, one at a time, into a finite case.
 * {@link #positions} chooses them, seeded by the case.
 *
 * @param tensor 0 for {@code q}, 1 for {@code k}, 2 for {@code v}, 3 for {@code dOut}
 * @param value the non-finite value
 * @param b batch entry
 * @param h head: the query head for {@code q}, the key/value head for {@code k} and {@code v}
 * @param n query row for {@code q}, key for {@code k} and {@code v}
 * @param d feature
 * @param kind why this element was chosen, e.g. "a key read by a global row"
 */
record NonFiniteInjection(int tensor, float value, int b, int h, int n, int d, String kind) {
    /** The values rule 20 injects. */
    static final float[] VALUES = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
    private static final String[] NAMES = {"q", "k", "v", "dOut"};
    /** Uniformly random elements per tensor and value. */
    private static final int RANDOM_POSITIONS = 2;

    /**
     * Every injection of one case: for each of {@code q}, {@code k} and {@code v} and each of
     * {@link #VALUES}, two uniformly random elements, one read by a global row (a row whose layout
     * row holds every key block), one read by no row (when the case has such elements: padded keys,
     * unseen key blocks, query rows with no allowed key), one at the first position of the sequence
     * (under causal with {@code Nq > Nk}, the only key of the first rows that see any, so a
     * {@code −∞} score leaves them all {@code −∞}) and one at the last (the end of the tail block).
     * The same case always gives the same injections.
     *
     * @param c the case. Not modified.
     * @return the injections
     */
    static List<NonFiniteInjection> positions(AttentionCase c) {
        return positions(c, false, RANDOM_POSITIONS);
    }

    /**
     * The injections of {@link #positions(AttentionCase)}, also in {@code dOut} (tensor 3, placed
     * as in {@code q}: a row that reads a global key block, a row with no allowed key, the first and
     * the last row) when {@code withOutputGradient}, with {@code randomPositions} uniformly random
     * elements per tensor and value.
     *
     * @param c the case. Not modified.
     * @param withOutputGradient whether to inject into {@code dOut} too
     * @param randomPositions uniformly random elements per tensor and value
     * @return the injections
     */
    static List<NonFiniteInjection> positions(AttentionCase c, boolean withOutputGradient, int randomPositions) {
        AttentionProblem p = c.problem();
        BlockLayout layout = c.layout();
        TokenMask mask = TokenMask.of(p, layout);
        int nq = p.queryLength();
        int nk = p.keyLength();
        boolean[] rowReads = new boolean[p.batch() * p.queryHeads() * nq];
        boolean[] globalRow = new boolean[rowReads.length];
        boolean[] keyRead = new boolean[p.batch() * p.kvHeads() * nk];
        boolean[] keyReadByGlobal = new boolean[keyRead.length];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kvRow = (b * p.kvHeads() + p.kvHeadOf(h)) * nk;
                for (int i = 0; i < nq; i++) {
                    int row = (b * p.queryHeads() + h) * nq + i;
                    boolean global = layout.rowSize(h, i / layout.queryBlock()) == layout.keyBlocks();
                    for (int j = 0; j < nk; j++) {
                        if (mask.allowed(b, h, i, j)) {
                            rowReads[row] = true;
                            keyRead[kvRow + j] = true;
                            keyReadByGlobal[kvRow + j] |= global;
                        }
                    }
                    globalRow[row] = global && rowReads[row];
                }
            }
        }
        List<NonFiniteInjection> out = new ArrayList<>();
        for (int t = 0; t < (withOutputGradient ? 4 : 3); t++) {
            boolean query = t == 0 || t == 3;
            int heads = query ? p.queryHeads() : p.kvHeads();
            int length = query ? nq : nk;
            int dim = t >= 2 ? p.valueDim() : p.headDim();
            boolean[] read = query ? rowReads : keyRead;
            boolean[] global = query ? globalRow : keyReadByGlobal;
            for (int x = 0; x < VALUES.length; x++) {
                float value = VALUES[x];
                Random rnd = new Random(c.seed() * 31 + t * VALUES.length + x);
                for (int r = 0; r < randomPositions; r++) {
                    out.add(new NonFiniteInjection(t, value, rnd.nextInt(p.batch()), rnd.nextInt(heads),
                            rnd.nextInt(length), rnd.nextInt(dim), "a random element"));
                }
                int byGlobal = pick(read, global, true, rnd);
                if (byGlobal >= 0) {
                    out.add(at(t, value, byGlobal, heads, length, rnd.nextInt(dim),
                            query ? "a global row" : "a key read by a global row"));
                }
                int unread = pick(read, global, false, rnd);
                if (unread >= 0) {
                    out.add(at(t, value, unread, heads, length, rnd.nextInt(dim),
                            query ? "a query row with no allowed key" : "a key no row reads"));
                }
                out.add(new NonFiniteInjection(t, value, rnd.nextInt(p.batch()), rnd.nextInt(heads), 0,
                        rnd.nextInt(dim), "the first position"));
                out.add(new NonFiniteInjection(t, value, rnd.nextInt(p.batch()), rnd.nextInt(heads), length - 1,
                        rnd.nextInt(dim), "the last position"));
            }
        }
        return out;
    }

    /**
     * @return a random flat index {@code (b·heads + h)·length + n} read by a global row ({@code wantGlobal}) or read
     *         by no row, or −1 when there is none
     */
    private static int pick(boolean[] read, boolean[] global, boolean wantGlobal, Random rnd) {
        List<Integer> candidates = new ArrayList<>();
        for (int x = 0; x < read.length; x++) {
            if (wantGlobal ? global[x] : !read[x]) {
                candidates.add(x);
            }
        }
        return candidates.isEmpty() ? -1 : candidates.get(rnd.nextInt(candidates.size()));
    }

    private static NonFiniteInjection at(int t, float value, int flat, int heads, int length, int d, String kind) {
        int n = flat % length;
        int h = flat / length % heads;
        int b = flat / length / heads;
        return new NonFiniteInjection(t, value, b, h, n, d, kind);
    }

    /** @return "q", "k", "v" or "dOut" */
    String tensorName() {
        return NAMES[tensor];
    }

    /**
     * Writes the value into the chosen element.
     *
     * @param inputs {@code {q, k, v}} (and {@code dOut} for tensor 3). Modified: one element.
     * @return the value it replaced, for {@link #undo}
     */
    float apply(Tensor[] inputs) {
        Tensor t = inputs[tensor];
        int index = t.offset(b, h, n) + d;
        float old = t.data()[index];
        t.data()[index] = value;
        return old;
    }

    /**
     * Puts back what {@link #apply} replaced.
     *
     * @param inputs {@code {q, k, v}} (and {@code dOut} for tensor 3). Modified: one element.
     * @param old the value {@link #apply} returned
     */
    void undo(Tensor[] inputs, float old) {
        Tensor t = inputs[tensor];
        t.data()[t.offset(b, h, n) + d] = old;
    }

    @Override
    public String toString() {
        return value + " in " + tensorName() + " at (b=" + b + ", h=" + h + ", " + (tensor == 0 || tensor == 3 ? "i=" : "j=") + n
                + ", d=" + d + ") (" + kind + ")";
    }
}
