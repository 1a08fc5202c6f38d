package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.ExactRow;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.plan.WorkPlan;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Split rows on the host: the property, what a plan uploads (the packed {@link WorkPlan}), and the
 * kernels' use of it replayed in Java — each packed unit computes its rows over its key blocks, a
 * split part writes its normalised partial into workspace row
 * {@code ((b·Hq + h)·slotsPerLayout + slot)·queryBlock + r} ({@code workspace_row} in the .cu),
 * and the merge folds a split row's parts in slot order with {@link OnlineSoftmax#merge} — which
 * must equal the whole row computed at once.
 */
class SplitRowsTest {
    private static final float ATOL = 2e-6f;
    private static final float RTOL = 2e-5f;

    @Test
    void propertyIsOffByDefaultAndBadValuesAreRefused() {
        assertEquals(SplitRows.OFF, SplitRows.maxBlocksPerUnit(null));
        assertEquals(Integer.MAX_VALUE, SplitRows.OFF);
        assertEquals(1, SplitRows.maxBlocksPerUnit("1"));
        assertEquals(16, SplitRows.maxBlocksPerUnit(" 16 "));
        for (String bad : new String[] {"0", "-3", "", " ", "four", "1.5", "99999999999"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SplitRows.maxBlocksPerUnit(bad), bad);
            assertTrue(e.getMessage().contains("-Dstarling.cuda.splitBlocks") && e.getMessage().contains("\"" + bad + "\""),
                    e.getMessage());
        }
    }

    /** A bad value is an error at plan creation, before any device is needed, never ignored. */
    @Test
    void badPropertyFailsPlanCreation() {
        String old = System.getProperty(SplitRows.PROPERTY);
        System.setProperty(SplitRows.PROPERTY, "zero");
        try {
            AttentionProblem p = AttentionProblem.builder().heads(1).length(16).headDim(8).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new CudaBackend().plan(p, Patterns.parse("dense(block=16)").layout(16, 16, 1)));
            assertTrue(e.getMessage().contains(SplitRows.PROPERTY), e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(SplitRows.PROPERTY);
            } else {
                System.setProperty(SplitRows.PROPERTY, old);
            }
        }
    }

    /** What the plan uploads: every CSR entry in exactly one unit, units bounded, slots consistent with the splits. */
    @Test
    void packedUnitsCoverEveryBlockOnceAndSlotsMatchTheSplits() {
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(64 * 100, 64 * 100, 3);
        for (int max : new int[] {1, 4, 16, 1000, SplitRows.OFF}) {
            WorkPlan w = WorkPlan.of(l, max);
            int[] units = w.packUnits();
            int[] splits = w.packSplits();
            int[] keyBlocks = w.packKeyBlocks();
            int base = 0;
            for (int hl = 0; hl < l.heads(); hl++) {
                Set<Integer> covered = new HashSet<>();
                int[] partsOfSlot = new int[Math.max(1, w.slotsPerLayout())];
                Arrays.fill(partsOfSlot, -1);
                int previousBlocks = Integer.MAX_VALUE;
                for (int u = 0; u < w.unitsPerLayout(); u++) {
                    int at = (hl * w.unitsPerLayout() + u) * WorkPlan.UNIT_INTS;
                    int qb = units[at];
                    if (qb < 0) {
                        continue;
                    }
                    int begin = units[at + 1];
                    int end = units[at + 2];
                    int slot = units[at + 3];
                    assertTrue(end - begin <= max && end > begin || l.rowSize(hl, qb) == 0, "unit " + u);
                    assertTrue(end - begin <= previousBlocks, "longest first");
                    previousBlocks = end - begin;
                    assertTrue(begin >= base + l.rowBegin(hl, qb) && end <= base + l.rowEnd(hl, qb), "inside its row");
                    for (int pos = begin; pos < end; pos++) {
                        assertTrue(covered.add(pos), "CSR entry " + pos + " covered twice");
                        assertEquals(l.keyBlock(hl, pos - base), keyBlocks[pos]);
                    }
                    if (slot >= 0) {
                        assertEquals(-1, partsOfSlot[slot], "slot " + slot + " used twice");
                        partsOfSlot[slot] = qb;
                    } else {
                        assertEquals(l.rowSize(hl, qb), end - begin, "an unsplit unit is its whole row");
                    }
                }
                assertEquals(l.nnz(hl), covered.size());
                int slotsInSplits = 0;
                for (int s = 0; s < w.splitsPerLayout(); s++) {
                    int at = (hl * w.splitsPerLayout() + s) * WorkPlan.SPLIT_INTS;
                    if (splits[at] < 0) {
                        continue;
                    }
                    assertTrue(splits[at + 2] >= 2, "a split row has parts");
                    for (int c = 0; c < splits[at + 2]; c++) {
                        assertEquals(splits[at], partsOfSlot[splits[at + 1] + c], "slot of part " + c + " of row " + splits[at]);
                    }
                    slotsInSplits += splits[at + 2];
                }
                assertEquals(w.slots(hl), slotsInSplits);
                base += l.nnz(hl);
            }
            if (max >= 100) {
                assertEquals(0, w.splitsPerLayout(), "nothing split at " + max);
                assertEquals(l.queryBlocks(), w.unitsPerLayout(), "one unit per row at " + max);
            }
            if (max == 16) {
                assertEquals(2 * 7, w.slotsPerLayout(), "two global rows of 100 blocks, 7 parts each");
                assertEquals(16, units[2] - units[1], "a global row's part comes first");
            }
        }
    }

    @Test
    void splitAndMergedRowsEqualTheWholeRows() {
        check("bigbird(block=16, window=3, global=2, random=2, seed=3)", 200, 200, false, null, null, 1);
        check("bigbird(block=16, window=3, global=2, random=2, seed=3)", 200, 200, false, null, null, 3);
        check("bigbird(block=16, window=3, global=2, random=2, seed=3)", 200, 200, false, null, null, SplitRows.OFF);
        check("bigbird(block=16, window=3, global=2, random=2, seed=5)", 150, 230, true, new int[] {230, 170},
                new int[] {150, 97}, 2);
        check("global(block=32, first=1, last=1)", 250, 250, true, null, new int[] {250, 40}, 1);
        check("dense(block=16)", 40, 100, true, new int[] {0, 100}, null, 2);
    }

    /** A NaN in one value feature reaches that feature of the rows that read it, through the merge too. */
    @Test
    void aNanValueFeatureStaysInItsFeatureThroughTheMerge() {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(2).length(96).headDim(8).valueDim(6).build();
        BlockLayout l = Patterns.parse("global(block=16, first=1, last=0)").layout(96, 96, 2);
        Tensor[] qkv = inputs(p, 7);
        qkv[2].data()[qkv[2].offset(0, 1, 70) + 4] = Float.NaN;
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 2, 96, 6);
        float[] lse = new float[p.lseSize()];
        emulate(p, l, WorkPlan.of(l, 1), qkv[0], qkv[1], qkv[2], out, lse);
        for (int i = 0; i < 16; i++) {
            for (int d = 0; d < 6; d++) {
                float o = out.get(0, 1, i, d);
                assertTrue(d == 4 ? Float.isNaN(o) : Float.isFinite(o), "row " + i + " feature " + d + ": " + o);
                assertTrue(Float.isFinite(out.get(0, 0, i, d)), "head 0 reads no NaN");
            }
            assertTrue(Float.isFinite(lse[TokenMask.of(p, l).lseIndex(0, 1, i)]), "the LSE does not read values");
        }
    }

    private static void check(String pattern, int nq, int nk, boolean causal, int[] keyLengths, int[] queryLengths,
                              int maxBlocks) {
        int batch = keyLengths != null ? keyLengths.length : queryLengths != null ? queryLengths.length : 1;
        AttentionProblem.Builder b = AttentionProblem.builder().batch(batch).heads(4).kvHeads(2).queryLength(nq)
                .keyLength(nk).headDim(12).valueDim(10).causal(causal);
        if (keyLengths != null) {
            b.keyLengths(keyLengths);
        }
        if (queryLengths != null) {
            b.queryLengths(queryLengths);
        }
        AttentionProblem p = b.build();
        BlockLayout l = Patterns.parse(pattern).layout(nq, nk, 4);
        Tensor[] qkv = inputs(p, 11);
        Tensor out = Tensor.zeros(TensorLayout.BHSD, batch, 4, nq, 10);
        float[] lse = new float[p.lseSize()];
        WorkPlan w = WorkPlan.of(l, maxBlocks);
        assertEquals(maxBlocks == SplitRows.OFF, w.splitsPerLayout() == 0, "the case splits rows unless off");
        emulate(p, l, w, qkv[0], qkv[1], qkv[2], out, lse);
        TokenMask mask = TokenMask.of(p, l);
        Tensor want = Tensor.zeros(TensorLayout.BHSD, batch, 4, nq, 10);
        float[] wantLse = new float[p.lseSize()];
        for (int bb = 0; bb < batch; bb++) {
            for (int h = 0; h < 4; h++) {
                for (int i = 0; i < nq; i++) {
                    ExactRow.compute(mask, qkv[0], qkv[1], qkv[2], bb, h, i, want, wantLse);
                    String where = pattern + " split " + maxBlocks + " at (b=" + bb + ", h=" + h + ", i=" + i + ")";
                    int x = mask.lseIndex(bb, h, i);
                    assertClose(wantLse[x], lse[x], where + " LSE");
                    for (int d = 0; d < 10; d++) {
                        assertClose(want.get(bb, h, i, d), out.get(bb, h, i, d), where + " d=" + d);
                    }
                }
            }
        }
    }

    private static void assertClose(float want, float got, String where) {
        if (Float.isNaN(want) || Float.isInfinite(want)) {
            assertEquals(want, got, where);
        } else if (!(Math.abs(got - want) <= ATOL + RTOL * Math.abs(want))) {
            throw new AssertionError(where + ": " + got + " vs " + want);
        }
    }

    private static Tensor[] inputs(AttentionProblem p, long seed) {
        Random r = new Random(seed);
        Tensor q = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), p.queryLength(), p.headDim());
        Tensor k = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), p.keyLength(), p.headDim());
        Tensor v = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), p.keyLength(), p.valueDim());
        for (Tensor t : new Tensor[] {q, k, v}) {
            for (int x = 0; x < t.data().length; x++) {
                t.data()[x] = (float) r.nextGaussian();
            }
        }
        return new Tensor[] {q, k, v};
    }

    /**
     * The kernels' plan replayed on the host (BHSD tensors): the attention kernel over the packed
     * units, then the merge kernel over the packed split rows. Rows are computed key by key in
     * float64 scores, as {@link ExactRow} does, so only the split and the merge can differ.
     */
    static void emulate(AttentionProblem p, BlockLayout l, WorkPlan w, Tensor q, Tensor k, Tensor v, Tensor out,
                        float[] lse) {
        TokenMask mask = TokenMask.of(p, l);
        int[] units = w.packUnits();
        int[] keyBlocks = w.packKeyBlocks();
        int[] splits = w.packSplits();
        int hq = p.queryHeads();
        int dv = p.valueDim();
        int qBlock = l.queryBlock();
        long rows = (long) p.batch() * hq * w.slotsPerLayout() * qBlock;
        float[] wsO = new float[Math.toIntExact(rows * dv)];
        float[] wsLse = new float[Math.toIntExact(rows)];
        Arrays.fill(out.data(), Float.NaN);
        Arrays.fill(wsO, Float.NaN);
        Arrays.fill(wsLse, Float.NaN);
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < hq; h++) {
                int hl = l.heads() == 1 ? 0 : h;
                for (int u = 0; u < w.unitsPerLayout(); u++) {
                    int at = (hl * w.unitsPerLayout() + u) * WorkPlan.UNIT_INTS;
                    int qb = units[at];
                    if (qb < 0) {
                        continue;
                    }
                    int slot = units[at + 3];
                    for (int i = mask.queryBegin(qb); i < mask.queryEnd(qb); i++) {
                        OnlineSoftmax.Rows state = new OnlineSoftmax.Rows(1, dv);
                        if (i < p.queryLength(b)) {
                            for (int pos = units[at + 1]; pos < units[at + 2]; pos++) {
                                fold(p, mask, q, k, v, b, h, i, keyBlocks[pos], state);
                            }
                        }
                        if (slot < 0) {
                            state.finish(0, out.data(), out.offset(b, h, i), lse, mask.lseIndex(b, h, i));
                        } else {
                            int row = workspaceRow(p, w, qBlock, b, h, slot, i - qb * qBlock);
                            state.finish(0, wsO, row * dv, wsLse, row);
                        }
                    }
                }
                for (int s = 0; s < w.splitsPerLayout(); s++) {
                    int at = (hl * w.splitsPerLayout() + s) * WorkPlan.SPLIT_INTS;
                    int qb = splits[at];
                    if (qb < 0) {
                        continue;
                    }
                    int first = splits[at + 1];
                    for (int i = mask.queryBegin(qb); i < mask.queryEnd(qb); i++) {
                        int r0 = workspaceRow(p, w, qBlock, b, h, first, i - qb * qBlock);
                        float[] o = Arrays.copyOfRange(wsO, r0 * dv, r0 * dv + dv);
                        float total = wsLse[r0];
                        for (int c = 1; c < splits[at + 2]; c++) {
                            int rc = workspaceRow(p, w, qBlock, b, h, first + c, i - qb * qBlock);
                            total = OnlineSoftmax.merge(o, 0, total, wsO, rc * dv, wsLse[rc], dv, o, 0);
                        }
                        System.arraycopy(o, 0, out.data(), out.offset(b, h, i), dv);
                        lse[mask.lseIndex(b, h, i)] = total;
                    }
                }
            }
        }
    }

    /** {@code workspace_row} of the .cu. */
    private static int workspaceRow(AttentionProblem p, WorkPlan w, int qBlock, int b, int h, int slot, int r) {
        return Math.toIntExact((((long) b * p.queryHeads() + h) * w.slotsPerLayout() + slot) * qBlock + r);
    }

    /** Folds the keys of key block {@code kb} that row {@code i} reads into {@code state}, as ExactRow does. */
    private static void fold(AttentionProblem p, TokenMask mask, Tensor q, Tensor k, Tensor v, int b, int h, int i, int kb,
                             OnlineSoftmax.Rows state) {
        int j0 = mask.keyBegin(kb);
        int j1 = mask.keyEnd(b, i, kb);
        if (j1 <= j0) {
            return;
        }
        int kvh = p.kvHeadOf(h);
        double[] scores = new double[j1 - j0];
        double blockMax = Double.NEGATIVE_INFINITY;
        for (int j = j0; j < j1; j++) {
            double dot = 0;
            for (int d = 0; d < p.headDim(); d++) {
                dot += (double) q.get(b, h, i, d) * k.get(b, kvh, j, d);
            }
            scores[j - j0] = p.scale() * dot;
            blockMax = OnlineSoftmax.max(blockMax, scores[j - j0]);
        }
        double shift = state.raise(0, blockMax);
        double sum = 0;
        float[] acc = state.acc();
        for (int j = j0; j < j1; j++) {
            double weight = Math.exp(scores[j - j0] - shift);
            sum += weight;
            for (int d = 0; d < p.valueDim(); d++) {
                acc[d] += (float) (weight * v.get(b, kvh, j, d));
            }
        }
        state.add(0, sum);
    }
}
