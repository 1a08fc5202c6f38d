package dev.starling.backend.nd4j;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
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
 * An ND4J plan. Groups of work units (see {@link WorkGroups}) are computed with batched ND4J
 * products; the partial results of a query block (several units when its row is long) are merged
 * exactly with the online-softmax rule into the output rows, which serve as the accumulator, with
 * a running maximum and sum per row. ND4J arrays live in a workspace of the calling thread sized
 * for the largest group and reused by every group; it is destroyed at the end of the call, so no
 * off-heap memory outlives a call and the plan itself holds none.
 *
 * <p>Non-finite inputs: keys, values and queries are sanitised to 0 before ND4J sees them and the
 * rows whose allowed set reads a non-finite value are set to NaN afterwards, so masked keys can
 * never leak NaN through {@code 0 · NaN} in a product (DESIGN section 2).
 */
final class Nd4jPlan implements AttentionPlan {
    /** Longest unit in key blocks: a longer row is split and merged. */
    static final int MAX_BLOCKS_PER_UNIT = 32;
    /** Largest score tensor per group, in floats (8 MB). */
    static final long GROUP_BUDGET_FLOATS = 2L << 20;

    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final boolean causal;
    private final List<List<WorkGroups.Group>> groups = new ArrayList<>();
    private final WorkspaceConfiguration workspace;
    private volatile boolean closed;

    Nd4jPlan(AttentionProblem problem, BlockLayout layout) {
        this.problem = problem;
        this.layout = layout;
        this.causal = dev.starling.api.plan.TokenMask.of(problem, layout).causal();
        long largest = 0;
        for (int hl = 0; hl < layout.heads(); hl++) {
            List<WorkGroups.Group> planned = WorkGroups.plan(layout, hl, MAX_BLOCKS_PER_UNIT, GROUP_BUDGET_FLOATS);
            groups.add(planned);
            for (WorkGroups.Group g : planned) {
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

    /** Upper bound of the ND4J memory one group uses: its inputs, scores, reductions and output. */
    private long groupBytes(WorkGroups.Group g) {
        long rows = (long) g.units().size() * layout.queryBlock();
        long keys = (long) g.units().size() * g.maxBlocks() * layout.keyBlock();
        long cols = (long) g.maxBlocks() * layout.keyBlock();
        long floats = rows * problem.headDim() + keys * (problem.headDim() + problem.valueDim())
                + 2 * rows * cols + 4 * rows + rows * problem.valueDim();
        return 4 * floats + 16 * 1024;
    }

    @Override
    public AttentionProblem problem() {
        return problem;
    }

    @Override
    public BlockLayout layout() {
        return layout;
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        if (closed) {
            throw new IllegalStateException("forward called on a closed nd4j plan");
        }
        problem.checkInputs(q, k, v, out, lse);
        int nq = problem.queryLength();
        int dv = problem.valueDim();
        double[] rowMax = new double[nq];
        double[] rowSum = new double[nq];
        boolean[] bad = new boolean[nq];
        String workspaceId = "starling-nd4j-" + System.identityHashCode(this);
        try {
            for (int b = 0; b < problem.batch(); b++) {
                for (int h = 0; h < problem.queryHeads(); h++) {
                    Arrays.fill(rowMax, Double.NEGATIVE_INFINITY);
                    Arrays.fill(rowSum, 0);
                    Arrays.fill(bad, false);
                    for (int i = 0; i < nq; i++) {
                        int o = out.offset(b, h, i);
                        Arrays.fill(out.data(), o, o + dv, 0f);
                    }
                    for (WorkGroups.Group group : groups.get(layout.headIndex(h))) {
                        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(workspace, workspaceId)) {
                            new GroupStep(b, h, group, q, k, v, out, rowMax, rowSum, bad).run();
                        }
                    }
                    finish(b, h, out, lse, rowMax, rowSum, bad);
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

    /** Normalises the accumulated rows; writes zeros and −∞ for rows without keys, NaN for rows that read NaN. */
    private void finish(int b, int h, Tensor out, float[] lse, double[] rowMax, double[] rowSum, boolean[] bad) {
        int dv = problem.valueDim();
        int qLen = problem.queryLength(b);
        float[] od = out.data();
        for (int i = 0; i < problem.queryLength(); i++) {
            int o = out.offset(b, h, i);
            int lseAt = (b * problem.queryHeads() + h) * problem.queryLength() + i;
            double l = rowSum[i];
            if (i >= qLen || l == 0) {
                Arrays.fill(od, o, o + dv, 0f);
                if (lse != null) {
                    lse[lseAt] = Float.NEGATIVE_INFINITY;
                }
            } else if (bad[i] || Double.isNaN(l)) {
                Arrays.fill(od, o, o + dv, Float.NaN);
                if (lse != null) {
                    lse[lseAt] = Float.NaN;
                }
            } else {
                float inv = (float) (1.0 / l);
                for (int d = 0; d < dv; d++) {
                    od[o + d] *= inv;
                }
                if (lse != null) {
                    lse[lseAt] = (float) (rowMax[i] + Math.log(l));
                }
            }
        }
    }

    /** One group of units for one (batch, head): gather, two batched products, merge. */
    private final class GroupStep {
        private final int b;
        private final int h;
        private final int kvh;
        private final WorkGroups.Group group;
        private final Tensor q;
        private final Tensor k;
        private final Tensor v;
        private final Tensor out;
        private final double[] rowMax;
        private final double[] rowSum;
        private final boolean[] bad;

        GroupStep(int b, int h, WorkGroups.Group group, Tensor q, Tensor k, Tensor v, Tensor out, double[] rowMax,
                  double[] rowSum, boolean[] bad) {
            this.b = b;
            this.h = h;
            this.kvh = problem.kvHeadOf(h);
            this.group = group;
            this.q = q;
            this.k = k;
            this.v = v;
            this.out = out;
            this.rowMax = rowMax;
            this.rowSum = rowSum;
            this.bad = bad;
        }

        void run() {
            int g = group.units().size();
            int qbs = layout.queryBlock();
            int kbs = layout.keyBlock();
            int kk = group.maxBlocks() * kbs;
            int d = problem.headDim();
            int dv = problem.valueDim();
            int nq = problem.queryLength();
            int nk = problem.keyLength();
            int qLen = problem.queryLength(b);
            int kLen = Math.min(nk, problem.keyLength(b));
            int shift = nk - nq;
            float scale = problem.scale();
            float[] qbuf = new float[g * qbs * d];
            float[] kbuf = new float[g * kk * d];
            float[] vbuf = new float[g * kk * dv];
            float[] mask = new float[g * qbs * kk];
            boolean[] keyBad = new boolean[g * kk];
            int[] keyPos = new int[g * kk];
            int[] allowed = new int[g * qbs];
            boolean[] rowBad = new boolean[g * qbs];
            Arrays.fill(keyPos, Integer.MAX_VALUE);
            for (int u = 0; u < g; u++) {
                WorkGroups.Unit unit = group.units().get(u);
                for (int t = 0; t < unit.blocks(); t++) {
                    int j0 = layout.keyBlock(h, unit.begin() + t) * kbs;
                    for (int jj = 0; jj < kbs; jj++) {
                        int j = j0 + jj;
                        if (j >= kLen) {
                            break;
                        }
                        int slot = u * kk + t * kbs + jj;
                        keyPos[slot] = j;
                        keyBad[slot] = copyRow(k, j, d, kbuf, slot * d) | copyRow(v, j, dv, vbuf, slot * dv);
                    }
                }
                int i0 = unit.queryBlock() * qbs;
                for (int r = 0; r < qbs; r++) {
                    int i = i0 + r;
                    int row = u * qbs + r;
                    int m = row * kk;
                    if (i >= nq || i >= qLen) {
                        Arrays.fill(mask, m, m + kk, Float.NEGATIVE_INFINITY);
                        continue;
                    }
                    rowBad[row] = copyRow(q, i, d, qbuf, row * d);
                    int limit = causal ? i + shift : Integer.MAX_VALUE;
                    boolean readsBad = false;
                    int count = 0;
                    for (int c = 0; c < kk; c++) {
                        int j = keyPos[u * kk + c];
                        boolean ok = j != Integer.MAX_VALUE && j <= limit;
                        mask[m + c] = ok ? 0f : Float.NEGATIVE_INFINITY;
                        if (ok) {
                            count++;
                            readsBad |= keyBad[u * kk + c];
                        }
                    }
                    allowed[row] = count;
                    rowBad[row] = count > 0 && (rowBad[row] || readsBad);
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
            INDArray ma = offHeap(mask, (long) g * qbs, kk);
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

        /** Copies row {@code n} of head {@code kvh}/{@code h}; a non-finite value is stored as 0 and reported. */
        private boolean copyRow(Tensor t, int n, int dim, float[] dst, int at) {
            int head = t == q ? h : kvh;
            int src = t.offset(b, head, n);
            float[] data = t.data();
            boolean nonFinite = false;
            for (int x = 0; x < dim; x++) {
                float value = data[src + x];
                if (Float.isFinite(value)) {
                    dst[at + x] = value;
                } else {
                    nonFinite = true;
                    dst[at + x] = 0f;
                }
            }
            return nonFinite;
        }

        /** Online-softmax merge of each unit row's (max, sum, unnormalised output) into the running row. */
        private void merge(int g, int qbs, int dv, float[] maxima, float[] sums, float[] unnormalised, int[] allowed,
                           boolean[] rowBad) {
            float[] od = out.data();
            for (int u = 0; u < g; u++) {
                int i0 = group.units().get(u).queryBlock() * qbs;
                for (int r = 0; r < qbs; r++) {
                    int row = u * qbs + r;
                    int i = i0 + r;
                    if (i >= problem.queryLength() || allowed[row] == 0) {
                        continue;
                    }
                    bad[i] |= rowBad[row];
                    double mc = maxima[row];
                    double mNew = Math.max(rowMax[i], mc);
                    double keep = rowMax[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(rowMax[i] - mNew);
                    double add = Math.exp(mc - mNew);
                    rowSum[i] = rowSum[i] * keep + sums[row] * add;
                    rowMax[i] = mNew;
                    int o = out.offset(b, h, i);
                    int src = row * dv;
                    float fk = (float) keep;
                    float fa = (float) add;
                    for (int x = 0; x < dv; x++) {
                        od[o + x] = od[o + x] * fk + unnormalised[src + x] * fa;
                    }
                }
            }
        }
    }
}
