package dev.starling.backend.nd4j;

import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.ExactRow;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.plan.WorkPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.SpillPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.BooleanIndexing;
import org.nd4j.linalg.indexing.conditions.Conditions;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * An ND4J plan. The shared {@link WorkPlan} cuts each row into units of at most
 * {@value #MAX_BLOCKS_PER_UNIT} key blocks, longest first; units of similar length are batched
 * into groups ({@link #group}) computed with two batched ND4J products each, and every unit row's
 * partial (max, sum, unnormalised output) is folded exactly into the row's {@link OnlineSoftmax}
 * state, which is finished into the output once per (batch, head). Which keys a row reads comes
 * from the {@link TokenMask} as ranges; they become an additive mask of the scores, {@code −∞} for
 * keys a row does not read and the block's {@code ln c} (block counts, 0 without) for the others.
 * ND4J arrays live in a workspace of the calling thread sized for the largest group and reused by
 * every group; it is destroyed at the end of the call, so no off-heap memory outlives a call and
 * the plan itself holds none.
 *
 * <p>Non-finite inputs: keys, values and queries are sanitised to 0 before ND4J sees them (a
 * masked key's NaN would otherwise leak into every row of a product through {@code 0 · NaN}), and
 * the few rows whose allowed set reads a non-finite value are then recomputed by {@link ExactRow},
 * which gives exactly the oracle's non-finite pattern (DESIGN section 2).
 */
final class Nd4jPlan extends BasePlan {
    /** Longest unit in key blocks: a longer row is split and merged. */
    static final int MAX_BLOCKS_PER_UNIT = 32;
    /** Largest score tensor per group, in floats (8 MB). */
    static final long GROUP_BUDGET_FLOATS = 2L << 20;

    /** Units computed by one batched product; {@code maxBlocks} is the longest unit. */
    record Group(List<WorkPlan.Unit> units, int maxBlocks) {
    }

    private final List<List<Group>> groups = new ArrayList<>();
    private final int queryRows;
    private final int keyRows;
    private final WorkspaceConfiguration workspace;

    Nd4jPlan(SparseAttention backend, AttentionProblem problem, BlockLayout layout) {
        super(backend, problem, layout);
        // Scratch is sized by what a block can hold, never by a block size larger than the sequence.
        this.queryRows = Math.min(layout.queryBlock(), problem.queryLength());
        this.keyRows = Math.min(layout.keyBlock(), problem.keyLength());
        WorkPlan work = WorkPlan.of(layout, MAX_BLOCKS_PER_UNIT);
        long largest = 0;
        for (int hl = 0; hl < work.headLayouts(); hl++) {
            List<Group> planned = group(work.units(hl), (long) queryRows * keyRows, GROUP_BUDGET_FLOATS);
            groups.add(planned);
            for (Group g : planned) {
                largest = Math.max(largest, groupBytes(g));
            }
        }
        // One workspace per calling thread, sized for the largest group and reused by every group:
        // allocating ND4J buffers per group costs more than the products themselves.
        this.workspace = WorkspaceConfiguration.builder()
                .initialSize(largest + largest / 2 + (1L << 20))
                .policyAllocation(AllocationPolicy.STRICT)
                .policyLearning(LearningPolicy.NONE)
                .policySpill(SpillPolicy.EXTERNAL)
                .build();
    }

    /**
     * Batches units (already longest first) into groups whose score tensor
     * {@code [units, queryRows, maxBlocks · keyRows]} stays under {@code budgetFloats}, so memory
     * per group is bounded whatever the sequence length.
     *
     * @param units the units of one head layout, longest first
     * @param floatsPerKeyBlock {@code queryRows · keyRows}
     * @param budgetFloats largest score tensor of a group
     * @return the groups, in order
     */
    static List<Group> group(List<WorkPlan.Unit> units, long floatsPerKeyBlock, long budgetFloats) {
        List<Group> out = new ArrayList<>();
        int i = 0;
        while (i < units.size()) {
            int maxBlocks = Math.max(1, units.get(i).blocks());
            long perUnit = floatsPerKeyBlock * maxBlocks;
            int count = (int) Math.max(1, Math.min(units.size() - i, budgetFloats / perUnit));
            out.add(new Group(List.copyOf(units.subList(i, i + count)), maxBlocks));
            i += count;
        }
        return out;
    }

    /**
     * Writes each row's normalised output and LSE: straight into a float32 heap {@code out}, or
     * through one row of scratch into an off-heap one (an {@code INDArray}'s memory, say).
     */
    private void finish(OnlineSoftmax.Rows rows, int b, int h, Tensor out, float[] lse) {
        int nq = problem().queryLength();
        if (out.onHeap()) {
            for (int i = 0; i < nq; i++) {
                rows.finish(i, out.data(), out.offset(b, h, i), lse, mask().lseIndex(b, h, i));
            }
            return;
        }
        float[] row = new float[problem().valueDim()];
        for (int i = 0; i < nq; i++) {
            rows.finish(i, row, 0, lse, mask().lseIndex(b, h, i));
            long at = out.index(b, h, i, 0);
            for (int d = 0; d < row.length; d++) {
                out.write(at + d, row[d]);
            }
        }
    }

    /** Upper bound of the ND4J memory one group uses: its inputs, scores, reductions and output. */
    private long groupBytes(Group g) {
        long rows = (long) g.units().size() * queryRows;
        long keys = (long) g.units().size() * g.maxBlocks() * keyRows;
        long cols = (long) g.maxBlocks() * keyRows;
        long floats = rows * problem().headDim() + keys * (problem().headDim() + problem().valueDim())
                + 2 * rows * cols + 4 * rows + rows * problem().valueDim();
        return 4 * floats + 16 * 1024;
    }

    @Override
    protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        AttentionProblem problem = problem();
        int nq = problem.queryLength();
        int dv = problem.valueDim();
        OnlineSoftmax.Rows rows = new OnlineSoftmax.Rows(nq, dv);
        boolean[] tainted = new boolean[nq];
        String workspaceId = "starling-nd4j-" + System.identityHashCode(this);
        try {
            for (int b = 0; b < problem.batch(); b++) {
                for (int h = 0; h < problem.queryHeads(); h++) {
                    rows.reset(nq);
                    Arrays.fill(tainted, false);
                    for (Group group : groups.get(layout().headIndex(h))) {
                        MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(workspace, workspaceId);
                        try (ws) {   // every array made inside lives in the workspace, freed on close
                            new GroupStep(b, h, group, q, k, v, rows, tainted).run();
                        }
                    }
                    finish(rows, b, h, out, lse);
                    for (int i = 0; i < nq; i++) {
                        if (tainted[i]) {
                            ExactRow.compute(mask(), q, k, v, b, h, i, out, lse);
                        }
                    }
                }
            }
        } finally {
            // The workspace belongs to this thread; free it now so nothing outlives the call.
            MemoryWorkspace ws = Nd4j.getWorkspaceManager().getWorkspaceForCurrentThread(workspaceId);
            if (ws != null) {
                Nd4j.getWorkspaceManager().destroyWorkspace(ws);
            }
        }
    }

    /** One group of units for one (batch, head): gather, two batched products, merge. */
    private final class GroupStep {
        private final int b;
        private final int h;
        private final int kvh;
        private final Group group;
        private final Tensor q;
        private final Tensor k;
        private final Tensor v;
        private final OnlineSoftmax.Rows rows;
        private final boolean[] tainted;

        GroupStep(int b, int h, Group group, Tensor q, Tensor k, Tensor v, OnlineSoftmax.Rows rows, boolean[] tainted) {
            this.b = b;
            this.h = h;
            this.kvh = problem().kvHeadOf(h);
            this.group = group;
            this.q = q;
            this.k = k;
            this.v = v;
            this.rows = rows;
            this.tainted = tainted;
        }

        void run() {
            TokenMask mask = mask();
            BlockLayout layout = layout();
            int g = group.units().size();
            int qbs = queryRows;
            int kbs = keyRows;
            int kk = group.maxBlocks() * kbs;
            int d = problem().headDim();
            int dv = problem().valueDim();
            float scale = problem().scale();
            float[] qbuf = new float[g * qbs * d];
            float[] kbuf = new float[g * kk * d];
            float[] vbuf = new float[g * kk * dv];
            float[] maskBuf = new float[g * qbs * kk];
            boolean[] keyBad = new boolean[g * kk];
            int[] allowed = new int[g * qbs];
            boolean[] rowBad = new boolean[g * qbs];
            Arrays.fill(maskBuf, Float.NEGATIVE_INFINITY);
            for (int u = 0; u < g; u++) {
                WorkPlan.Unit unit = group.units().get(u);
                int qb = unit.queryBlock();
                for (int t = 0; t < unit.blocks(); t++) {
                    int kb = layout.keyBlock(h, unit.begin() + t);
                    int j0 = mask.keyBegin(kb);
                    int j1 = mask.blockKeyEnd(b, qb, kb);
                    for (int j = j0; j < j1; j++) {
                        int slot = u * kk + t * kbs + (j - j0);
                        keyBad[slot] = copyRow(k, kvh, j, d, kbuf, slot * d) | copyRow(v, kvh, j, dv, vbuf, slot * dv);
                    }
                }
                int i0 = mask.queryBegin(qb);
                for (int i = i0; i < mask.validQueryEnd(b, qb); i++) {
                    int row = u * qbs + (i - i0);
                    int m = row * kk;
                    boolean readsBad = copyRow(q, h, i, d, qbuf, row * d);
                    int count = 0;
                    for (int t = 0; t < unit.blocks(); t++) {
                        int kb = layout.keyBlock(h, unit.begin() + t);
                        int n = mask.keyEnd(b, i, kb) - mask.keyBegin(kb);
                        // The additive mask: -inf for keys the row does not read, ln c (0 without counts) for the others.
                        float logWeight = (float) mask.logWeight(h, unit.begin() + t);
                        for (int c = t * kbs; c < t * kbs + n; c++) {
                            maskBuf[m + c] = logWeight;
                            readsBad |= keyBad[u * kk + c];
                        }
                        count += Math.max(0, n);
                    }
                    allowed[row] = count;
                    rowBad[row] = count > 0 && readsBad;
                    for (int c = row * d; c < row * d + d; c++) {
                        qbuf[c] *= scale;
                    }
                }
            }
            float[] maxima;
            float[] sums;
            float[] unnormalised;
            INDArray qa = offHeap(qbuf, g, qbs, d);
            INDArray ka = offHeap(kbuf, g, kk, d);
            INDArray va = offHeap(vbuf, g, kk, dv);
            INDArray ma = offHeap(maskBuf, (long) g * qbs, kk);
            INDArray scores = Nd4j.matmul(qa, ka, false, true, false);
            INDArray flat = null;
            INDArray mx = null;
            INDArray sum = null;
            INDArray weighted = null;
            try {
                flat = scores.reshape('c', (long) g * qbs, kk);
                flat.addi(ma);
                mx = flat.max(1);
                maxima = mx.toFloatVector();
                // Rows with no allowed key have maximum -inf; 0 keeps exp(-inf - 0) = 0 instead of NaN.
                BooleanIndexing.replaceWhere(mx, 0.0, Conditions.isInfinite());
                flat.subiColumnVector(mx.reshape((long) g * qbs, 1));
                Transforms.exp(flat, false);
                sum = flat.sum(1);
                sums = sum.toFloatVector();
                weighted = Nd4j.matmul(flat.reshape('c', g, qbs, kk), va);
                unnormalised = weighted.data().asFloat();
            } finally {
                // Arrays inside the workspace are reclaimed when it closes; spilled ones are closed here.
                for (INDArray a : new INDArray[] {qa, ka, va, ma, scores, mx, sum, weighted}) {
                    if (a != null && !a.isAttached() && a.closeable()) {
                        a.close();
                    }
                }
            }
            merge(g, qbs, dv, maxima, sums, unnormalised, allowed, rowBad);
        }

        /**
         * A C-order float array holding {@code src}. {@code Nd4j.create(float[])} copies element by
         * element; a bulk put into the buffer's NIO view is a plain memory copy.
         */
        private INDArray offHeap(float[] src, long... shape) {
            INDArray a = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
            a.data().asNioFloat().put(src, 0, src.length);
            return a;
        }

        /** Copies row {@code n} of {@code head}; a non-finite value is stored as 0 and reported. */
        private boolean copyRow(Tensor t, int head, int n, int dim, float[] dst, int at) {
            int src = t.offset(b, head, n);
            float[] data = t.onHeap() ? t.data() : null;   // off-heap views (an INDArray's memory) are read in place
            boolean nonFinite = false;
            for (int x = 0; x < dim; x++) {
                float value = data != null ? data[src + x] : t.read(src + x);
                if (Float.isFinite(value)) {
                    dst[at + x] = value;
                } else {
                    nonFinite = true;
                    dst[at + x] = 0f;
                }
            }
            return nonFinite;
        }

        /** Folds each unit row's partial (max, sum, unnormalised output) into the row's running state. */
        private void merge(int g, int qbs, int dv, float[] maxima, float[] sums, float[] unnormalised, int[] allowed,
                           boolean[] rowBad) {
            for (int u = 0; u < g; u++) {
                int i0 = mask().queryBegin(group.units().get(u).queryBlock());
                for (int r = 0; r < qbs; r++) {
                    int row = u * qbs + r;
                    if (allowed[row] == 0) {
                        continue;
                    }
                    tainted[i0 + r] |= rowBad[row];
                    rows.absorb(i0 + r, maxima[row], sums[row], unnormalised, row * dv);
                }
            }
        }
    }
}
