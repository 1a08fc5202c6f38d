package dev.starling.backend.vector;

import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.plan.WorkPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A vector plan. A call runs in waves of key/value groups {@code (b, kvh)}, as many per wave as
 * fit {@value #WAVE_FLOATS} packed floats (at least one), each wave in three parallel steps:
 * <ol>
 *   <li>pack: every key block of the wave's groups is transposed into {@code Kᵀ [D][kbp]}
 *       (zero-padded to whole vectors), and when {@code Dv} is not a multiple of the lane count
 *       its values are copied into zero-padded rows; done once per call, reused by every query
 *       block that reads the block;</li>
 *   <li>units: the shared {@link WorkPlan}'s units of every query head of the wave, longest first
 *       across heads, each run by a {@link TileKernel}; a unit that covers a whole row writes
 *       {@code O} and {@code LSE}, a part of a split row saves its unnormalised state;</li>
 *   <li>splits: the parts of each split row are merged exactly and written.</li>
 * </ol>
 * Work items are claimed from a shared counter by the calling thread and {@code threads − 1}
 * daemon workers of the plan's fixed pool. Scratch (packed keys, kernels) belongs to one call at a
 * time and is kept for the next call, so {@code forward} may run from several threads at once;
 * it holds {@code O(Nk·(D + Dv))} floats per concurrent call, nothing of size {@code Nq × Nk}.
 */
final class VectorPlan extends BasePlan {
    /** Packed key (and value) floats per wave: 64 MiB. */
    static final long WAVE_FLOATS = 16L << 20;
    /** Largest Java array. */
    private static final long MAX_ARRAY = Integer.MAX_VALUE - 16;
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final int threads;
    private final ExecutorService pool;
    private final WorkPlan work;
    private final int dim;
    private final int vdim;
    private final int vdp;
    private final int kbp;
    private final int keyBlocks;
    private final int qRows;
    private final boolean packValues;
    private final int groups;
    private final int groupSize;
    private final int groupsPerWave;
    private final int kFloats;
    private final int vFloats;
    private final ConcurrentLinkedQueue<Scratch> spare = new ConcurrentLinkedQueue<>();

    /** What one call owns while it runs. */
    private final class Scratch {
        final float[] kPack = new float[Math.toIntExact((long) groupsPerWave * kFloats)];
        final float[] vPack = new float[Math.toIntExact((long) groupsPerWave * vFloats)];
        final int partRows = Math.multiplyExact(Math.multiplyExact(groupsPerWave * groupSize, work.slotsPerLayout()), qRows);
        final float[] partMax = new float[partRows];
        final double[] partSum = new double[partRows];
        final boolean[] partSeen = new boolean[partRows];
        final float[] partAcc = new float[Math.multiplyExact(partRows, vdim)];
        final TileKernel[] kernels = new TileKernel[threads];

        TileKernel kernel(int worker) {
            TileKernel k = kernels[worker];
            if (k == null) {
                k = new TileKernel(dim, vdim, qRows, kbp);
                kernels[worker] = k;
            }
            return k;
        }
    }

    @FunctionalInterface
    private interface Step {
        void run(int worker, int item);
    }

    VectorPlan(SparseAttention backend, AttentionProblem problem, BlockLayout layout, int threads) {
        super(backend, problem, layout);
        this.threads = threads;
        this.dim = problem.headDim();
        this.vdim = problem.valueDim();
        this.packValues = vdim % TileKernel.LANES != 0;
        this.vdp = TileKernel.padLanes(vdim);
        this.kbp = TileKernel.padLanes(Math.max(1, Math.min(layout.keyBlock(), problem.keyLength())));
        this.keyBlocks = layout.keyBlocks();
        this.qRows = Math.max(1, Math.min(layout.queryBlock(), problem.queryLength()));
        this.groups = problem.batch() * problem.kvHeads();
        this.groupSize = problem.groupSize();
        long kPerGroup = (long) keyBlocks * dim * kbp;
        long vPerGroup = packValues ? (long) keyBlocks * kbp * vdp : 0;
        if (kPerGroup + vPerGroup > MAX_ARRAY) {
            throw new IllegalArgumentException("vector backend: one key/value head packs to " + (kPerGroup + vPerGroup)
                    + " floats (Nk " + problem.keyLength() + ", D " + dim + ", Dv " + vdim + "), over the limit of "
                    + MAX_ARRAY + " floats per Java array");
        }
        this.kFloats = (int) kPerGroup;
        this.vFloats = (int) vPerGroup;
        long perGroup = Math.max(1, kPerGroup + vPerGroup);
        this.groupsPerWave = (int) Math.max(1, Math.min(groups, Math.min(WAVE_FLOATS, MAX_ARRAY) / perGroup));
        this.work = WorkPlan.of(layout, maxBlocksPerUnit(layout, problem.queryHeads(), groupsPerWave * groupSize, threads));
        if (threads > 1) {
            int id = POOL_IDS.incrementAndGet();
            AtomicInteger n = new AtomicInteger();
            ThreadFactory factory = r -> {
                Thread t = new Thread(r, "starling-vector-" + id + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            };
            this.pool = Executors.newFixedThreadPool(threads - 1, factory);
        } else {
            this.pool = null;
        }
    }

    /**
     * Longest unit, in key blocks: rows are split only when one row would be more than a quarter of
     * a thread's share of a wave (BigBird's global rows when there are few heads); never with one thread.
     */
    static int maxBlocksPerUnit(BlockLayout layout, int queryHeads, int headsPerWave, int threads) {
        if (threads == 1) {
            return Integer.MAX_VALUE;
        }
        long nnz = layout.nnzOverHeads(queryHeads);
        long perWave = nnz / Math.max(1, queryHeads) * headsPerWave;
        return (int) Math.min(Integer.MAX_VALUE, Math.max(8, (perWave + 4L * threads - 1) / (4L * threads)));
    }

    @Override
    protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        Scratch scratch = spare.poll();
        if (scratch == null) {
            scratch = new Scratch();
        }
        try {
            for (int g0 = 0; g0 < groups; g0 += groupsPerWave) {
                wave(scratch, g0, Math.min(groups, g0 + groupsPerWave), q, k, v, out, lse);
            }
        } finally {
            if (!isClosed()) {
                spare.offer(scratch);
            }
        }
    }

    private void wave(Scratch scratch, int g0, int g1, Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        AttentionProblem problem = problem();
        int kvHeads = problem.kvHeads();
        int waveGroups = g1 - g0;
        parallel(waveGroups * keyBlocks, (w, item) -> {
            int local = item / keyBlocks;
            int group = g0 + local;
            pack(scratch, local, group / kvHeads, group % kvHeads, item % keyBlocks, k, v);
        });

        int heads = waveGroups * groupSize;
        int unitsPerHead = work.unitsPerLayout();
        parallel(heads * unitsPerHead, (w, item) -> {
            int x = item % heads;
            int u = item / heads;
            int group = g0 + x / groupSize;
            int b = group / kvHeads;
            int kvh = group % kvHeads;
            int h = kvh * groupSize + x % groupSize;
            List<WorkPlan.Unit> units = work.units(layout().headIndex(h));
            if (u < units.size()) {
                runUnit(scratch, scratch.kernel(w), x / groupSize, x, b, h, kvh, units.get(u), q, v, out, lse);
            }
        });

        int splitsPerHead = work.splitsPerLayout();
        if (splitsPerHead > 0) {
            TokenMask mask = mask();
            parallel(heads * splitsPerHead, (w, item) -> {
                int x = item % heads;
                int group = g0 + x / groupSize;
                int b = group / kvHeads;
                int h = (group % kvHeads) * groupSize + x % groupSize;
                List<WorkPlan.Split> splits = work.splits(layout().headIndex(h));
                int s = item / heads;
                if (s < splits.size()) {
                    WorkPlan.Split split = splits.get(s);
                    int qb = split.queryBlock();
                    int i0 = mask.queryBegin(qb);
                    scratch.kernel(w).finishSplit(scratch.partMax, scratch.partSum, scratch.partSeen, scratch.partAcc,
                            partBase(x, split.firstSlot()), split.parts(), qRows, out, b, h, i0,
                            mask.queryEnd(qb) - i0, mask.validQueryEnd(b, qb) - i0, lse, mask.lseIndex(b, h, i0));
                }
            });
        }
    }

    private int partBase(int headInWave, int slot) {
        return (headInWave * work.slotsPerLayout() + slot) * qRows;
    }

    /** Packs key block {@code kb} of {@code (b, kvh)} into wave slot {@code local}: {@code Kᵀ [D][kbp]}, and V rows padded to {@code vdp}. */
    private void pack(Scratch scratch, int local, int b, int kvh, int kb, Tensor k, Tensor v) {
        TokenMask mask = mask();
        int j0 = mask.keyBegin(kb);
        int n = mask.keyEnd(kb) - j0;
        float[] kd = k.data();
        float[] kT = scratch.kPack;
        int base = local * kFloats + kb * dim * kbp;
        int src = k.offset(b, kvh, j0);
        int stride = k.rowStride();
        for (int jj = 0; jj < n; jj++, src += stride) {
            for (int d = 0, dst = base + jj; d < dim; d++, dst += kbp) {
                kT[dst] = kd[src + d];
            }
        }
        if (n < kbp) {
            for (int d = 0; d < dim; d++) {
                java.util.Arrays.fill(kT, base + d * kbp + n, base + (d + 1) * kbp, 0f);
            }
        }
        if (packValues) {
            float[] vd = v.data();
            float[] vp = scratch.vPack;
            int vBase = local * vFloats + kb * kbp * vdp;
            int vSrc = v.offset(b, kvh, j0);
            int vStride = v.rowStride();
            for (int jj = 0; jj < n; jj++, vSrc += vStride) {
                int dst = vBase + jj * vdp;
                System.arraycopy(vd, vSrc, vp, dst, vdim);
                java.util.Arrays.fill(vp, dst + vdim, dst + vdp, 0f);
            }
        }
    }

    private void runUnit(Scratch scratch, TileKernel kernel, int local, int headInWave, int b, int h, int kvh,
                         WorkPlan.Unit unit, Tensor q, Tensor v, Tensor out, float[] lse) {
        TokenMask mask = mask();
        BlockLayout layout = layout();
        int qb = unit.queryBlock();
        int i0 = mask.queryBegin(qb);
        int rows = mask.validQueryEnd(b, qb) - i0;
        kernel.begin(q, b, h, i0, rows, problem().scale());
        float[] vd = packValues ? scratch.vPack : v.data();
        int vStride = packValues ? vdp : v.rowStride();
        for (int p = unit.begin(); p < unit.end() && rows > 0; p++) {
            int kb = layout.keyBlock(h, p);
            int j0 = mask.keyBegin(kb);
            int n = mask.blockKeyEnd(b, qb, kb) - j0;
            if (n <= 0) {
                continue;
            }
            kernel.setEnds(mask, b, qb, kb, i0, rows, j0, n);
            int vBase = packValues ? local * vFloats + kb * kbp * vdp : v.offset(b, kvh, j0);
            kernel.block(scratch.kPack, local * kFloats + kb * dim * kbp, vd, vBase, vStride, n, rows);
        }
        if (unit.slot() < 0) {
            kernel.finish(out, b, h, i0, mask.queryEnd(qb) - i0, rows, lse, mask.lseIndex(b, h, i0));
        } else {
            kernel.save(scratch.partMax, scratch.partSum, scratch.partSeen, scratch.partAcc,
                    partBase(headInWave, unit.slot()), rows);
        }
    }

    /**
     * Runs {@code step} on items {@code [0, items)}, claimed in order by the calling thread and up
     * to {@code threads − 1} pool workers; returns when all are done, rethrowing the first failure
     * only after every worker has stopped (so no worker outlives the call's scratch).
     */
    private void parallel(int items, Step step) {
        if (items <= 0) {
            return;
        }
        int workers = Math.min(threads, items);
        AtomicInteger next = new AtomicInteger();
        if (workers == 1) {
            for (int i = 0; i < items; i++) {
                step.run(0, i);
            }
            return;
        }
        List<Future<?>> helpers = new ArrayList<>(workers - 1);
        for (int w = 1; w < workers; w++) {
            int worker = w;
            helpers.add(pool.submit(() -> drain(step, worker, next, items)));
        }
        Throwable failure = null;
        try {
            drain(step, 0, next, items);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        boolean interrupted = false;
        for (Future<?> f : helpers) {
            while (true) {
                try {
                    f.get();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                    next.set(items);
                } catch (ExecutionException e) {
                    if (failure == null) {
                        failure = e.getCause();
                    }
                    break;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
            if (failure == null) {
                failure = new IllegalStateException("interrupted during forward");
            }
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error err) {
            throw err;
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
    }

    private static void drain(Step step, int worker, AtomicInteger next, int items) {
        try {
            for (int i = next.getAndIncrement(); i < items; i = next.getAndIncrement()) {
                step.run(worker, i);
            }
        } catch (RuntimeException | Error e) {
            next.set(items);
            throw e;
        }
    }

    @Override
    protected void release() {
        spare.clear();
        if (pool != null) {
            pool.shutdown();
        }
    }
}
