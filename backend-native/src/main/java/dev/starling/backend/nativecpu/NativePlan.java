package dev.starling.backend.nativecpu;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.ExactRow;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.plan.WorkPlan;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A native plan: the shared {@link WorkPlan}'s units of every {@code (batch, query head)}, longest
 * first, and the token mask's per-row key ends, made once; each {@code forward} is one native call
 * ({@link NativeKernels#forward}) that packs K and V into the path's tile layout and computes every
 * unit on the call's threads. Split rows (long rows when many threads share few heads) come back
 * as normalised partials and are merged here with {@link OnlineSoftmax#merge}. A call whose inputs
 * hold NaN or ±∞ is computed row by row with {@link ExactRow}.
 *
 * <p>Scratch (the direct buffer of packed K and V, the partials) belongs to one call at a time and
 * is kept for the next, so {@code forward} may run from several threads at once. Its size is linear
 * in the keys: {@code B·Hkv·(Nk + 64)·(D + Dv)} elements at most, refused at plan time above 2 GiB.
 */
final class NativePlan extends BasePlan {
    private final KernelPath path;
    private final WorkPlan work;
    private final int[] geometry;
    private final float scale2;
    private final int[] items;
    private final int[] units;
    private final int[] keyBlocks;
    private final int[] rowKeyEnd;
    private final int qRows;
    private final int partRows;
    private final long scratchBytes;
    private final ConcurrentLinkedQueue<Scratch> spare = new ConcurrentLinkedQueue<>();

    /** What one call owns while it runs. */
    private final class Scratch {
        final ByteBuffer packed = ByteBuffer.allocateDirect((int) scratchBytes);
        final float[] partOut = partRows == 0 ? null : new float[Math.multiplyExact(partRows, problem().valueDim())];
        final float[] partLse = partRows == 0 ? null : new float[partRows];
    }

    NativePlan(NativeBackend backend, AttentionProblem problem, BlockLayout layout, KernelPath path, int threads) {
        super(backend, problem, layout);
        this.path = path;
        int heads = Math.multiplyExact(problem.batch(), problem.queryHeads());
        this.qRows = Math.max(1, Math.min(layout.queryBlock(), problem.queryLength()));
        this.work = WorkPlan.of(layout, maxBlocksPerUnit(layout, problem.queryHeads(), heads, threads));
        this.units = work.packUnits();
        this.keyBlocks = work.packKeyBlocks();
        this.items = items(work, layout, heads, problem.queryHeads());
        this.rowKeyEnd = rowKeyEnds(mask());
        this.partRows = work.splitsPerLayout() == 0 ? 0
                : Math.multiplyExact(Math.multiplyExact(heads, work.slotsPerLayout()), qRows);
        this.scale2 = (float) (problem.scale() / Math.log(2.0));
        this.geometry = new int[] {problem.batch(), problem.queryHeads(), problem.kvHeads(), problem.queryLength(),
                problem.keyLength(), problem.headDim(), problem.valueDim(), layout.queryBlock(), layout.keyBlock(), qRows,
                work.slotsPerLayout(), items.length / 2, threads};
        this.scratchBytes = NativeKernels.scratchBytes(path.code(), geometry);
        if (scratchBytes < 0 || scratchBytes > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("the packed keys and values of " + problem + " need " + scratchBytes
                    + " bytes; the native backend holds at most 2 GiB of them per call (fewer kv heads or batch entries)");
        }
    }

    /** @return the kernel path this plan runs */
    KernelPath path() {
        return path;
    }

    /**
     * Longest unit in key blocks: a row is split only when it would be more than an eighth of a
     * thread's share of the work; never with one thread.
     */
    static int maxBlocksPerUnit(BlockLayout layout, int queryHeads, int heads, int threads) {
        if (threads == 1) {
            return Integer.MAX_VALUE;
        }
        long perHead = layout.nnzOverHeads(queryHeads) / Math.max(1, queryHeads);
        long share = perHead * heads / threads;
        return (int) Math.min(Integer.MAX_VALUE, Math.max(16, share / 8));
    }

    /**
     * The claiming order: every {@code (batch · Hq + h, unit)}, longest unit first (BigBird's global
     * rows start early), then by head and query block, so that neighbouring query blocks, which
     * share their window's keys, run one after another.
     *
     * @return {@code (bh, packed unit index)} pairs
     */
    static int[] items(WorkPlan work, BlockLayout layout, int heads, int queryHeads) {
        List<int[]> all = new ArrayList<>();
        for (int bh = 0; bh < heads; bh++) {
            int hl = layout.headIndex(bh % queryHeads);
            List<WorkPlan.Unit> list = work.units(hl);
            for (int u = 0; u < list.size(); u++) {
                WorkPlan.Unit unit = list.get(u);
                all.add(new int[] {bh, hl * work.unitsPerLayout() + u, unit.blocks(), unit.queryBlock(), unit.begin()});
            }
        }
        all.sort(Comparator.<int[]>comparingInt(x -> -x[2]).thenComparingInt(x -> x[0]).thenComparingInt(x -> x[3])
                .thenComparingInt(x -> x[4]));
        int[] out = new int[Math.multiplyExact(all.size(), 2)];
        for (int x = 0; x < all.size(); x++) {
            out[2 * x] = all.get(x)[0];
            out[2 * x + 1] = all.get(x)[1];
        }
        return out;
    }

    /** Per {@code (b, i)}: {@link TokenMask#rowKeyEnd}, or 0 for a padded query row (it reads nothing). */
    static int[] rowKeyEnds(TokenMask mask) {
        AttentionProblem p = mask.problem();
        int[] ends = new int[Math.multiplyExact(p.batch(), p.queryLength())];
        for (int b = 0; b < p.batch(); b++) {
            for (int i = 0; i < p.queryLength(b); i++) {
                ends[b * p.queryLength() + i] = mask.rowKeyEnd(b, i);
            }
        }
        return ends;
    }

    @Override
    protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        Scratch scratch = spare.poll();
        if (scratch == null) {
            scratch = new Scratch();
        }
        try {
            int status = NativeKernels.forward(path.code(), geometry, strides(q, k, v, out), scale2, q.data(), k.data(),
                    v.data(), out.data(), lse, items, units, keyBlocks, rowKeyEnd, scratch.partOut, scratch.partLse,
                    scratch.packed);
            if (status == NativeKernels.NONFINITE) {
                exact(q, k, v, out, lse);
                return;
            }
            if (status != NativeKernels.OK) {
                throw new IllegalStateException("native " + path.text() + " kernel failed: " + NativeKernels.describe(status));
            }
            if (partRows > 0) {
                mergeSplits(scratch, out, lse);
            }
        } finally {
            if (!isClosed()) {
                spare.offer(scratch);
            }
        }
    }

    /** The {@code (b, h, n)} strides in floats of the four tensors. */
    private static long[] strides(Tensor... tensors) {
        long[] s = new long[12];
        for (int t = 0; t < 4; t++) {
            Tensor x = tensors[t];
            long origin = x.layout().rowOffset(0, 0, 0, x.heads(), x.length(), x.dim());
            s[3 * t] = x.layout().rowOffset(1, 0, 0, x.heads(), x.length(), x.dim()) - origin;
            s[3 * t + 1] = x.layout().rowOffset(0, 1, 0, x.heads(), x.length(), x.dim()) - origin;
            s[3 * t + 2] = x.rowStride();
        }
        return s;
    }

    /** Folds each split row's parts, in slot order, into its output row and LSE. */
    private void mergeSplits(Scratch scratch, Tensor out, float[] lse) {
        AttentionProblem p = problem();
        TokenMask mask = mask();
        int dv = p.valueDim();
        int heads = p.batch() * p.queryHeads();
        for (int bh = 0; bh < heads; bh++) {
            int b = bh / p.queryHeads();
            int h = bh % p.queryHeads();
            for (WorkPlan.Split split : work.splits(layout().headIndex(h))) {
                int i0 = mask.queryBegin(split.queryBlock());
                for (int i = i0; i < mask.queryEnd(split.queryBlock()); i++) {
                    int off = out.offset(b, h, i);
                    int first = partRow(bh, split.firstSlot(), i - i0);
                    System.arraycopy(scratch.partOut, first * dv, out.data(), off, dv);
                    float l = scratch.partLse[first];
                    for (int part = 1; part < split.parts(); part++) {
                        int at = partRow(bh, split.firstSlot() + part, i - i0);
                        l = OnlineSoftmax.merge(out.data(), off, l, scratch.partOut, at * dv, scratch.partLse[at], dv,
                                out.data(), off);
                    }
                    if (lse != null) {
                        lse[mask.lseIndex(b, h, i)] = l;
                    }
                }
            }
        }
    }

    private int partRow(int bh, int slot, int row) {
        return (bh * work.slotsPerLayout() + slot) * qRows + row;
    }

    /** The whole call, row by row, exactly as DESIGN section 2 says (inputs with NaN or ±∞). */
    private void exact(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        AttentionProblem p = problem();
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    ExactRow.compute(mask(), q, k, v, b, h, i, out, lse);
                }
            }
        }
    }

    @Override
    protected void release() {
        spare.clear();
    }
}
