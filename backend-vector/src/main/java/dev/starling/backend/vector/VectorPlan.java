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
 * A vector plan: the shared {@link WorkPlan}'s units of every {@code (batch, query head)}, claimed
 * longest first (unit-major across heads, so BigBird's global rows start early) from a shared
 * counter by the calling thread and {@code threads − 1} daemon workers of the plan's fixed pool;
 * each worker runs its units on its own {@link TileKernel}. A unit that covers a whole row writes
 * {@code O} and {@code LSE}; the parts of a split row save their unnormalised state, merged exactly
 * and written in a second step. Keys and values are read in place (the kernel broadcasts them
 * feature by feature), so a call allocates nothing of size {@code N}.
 *
 * <p>Scratch (kernels, merge slots) belongs to one call at a time and is kept for the next call,
 * so {@code forward} may run from several threads at once.
 */
final class VectorPlan extends BasePlan {
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final int threads;
    private final ExecutorService pool;
    private final WorkPlan work;
    private final int dim;
    private final int vdim;
    private final int qRows;
    private final int kRows;
    private final ConcurrentLinkedQueue<Scratch> spare = new ConcurrentLinkedQueue<>();

    /** What one call owns while it runs. */
    private final class Scratch {
        final int partRows;
        final float[] partMax;
        final double[] partSum;
        final boolean[] partSeen;
        final float[] partAcc;
        final TileKernel[] kernels = new TileKernel[threads];

        Scratch() {
            AttentionProblem p = problem();
            partRows = Math.multiplyExact(Math.multiplyExact(p.batch() * p.queryHeads(), work.slotsPerLayout()), qRows);
            partMax = new float[partRows];
            partSum = new double[partRows];
            partSeen = new boolean[partRows];
            partAcc = new float[Math.multiplyExact(partRows, vdim)];
        }

        TileKernel kernel(int worker) {
            TileKernel k = kernels[worker];
            if (k == null) {
                k = new TileKernel(dim, vdim, qRows, kRows);
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
        this.qRows = Math.max(1, Math.min(layout.queryBlock(), problem.queryLength()));
        this.kRows = Math.max(1, Math.min(layout.keyBlock(), problem.keyLength()));
        int heads = Math.multiplyExact(problem.batch(), problem.queryHeads());
        this.work = WorkPlan.of(layout, maxBlocksPerUnit(layout, problem.queryHeads(), heads, threads));
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
     * a thread's share of the work (BigBird's global rows when there are few heads); never with one
     * thread.
     *
     * @param layout the layout
     * @param queryHeads {@code Hq}
     * @param heads {@code B·Hq}, the rows of work
     * @param threads threads per call
     * @return the bound for {@link WorkPlan#of}
     */
    static int maxBlocksPerUnit(BlockLayout layout, int queryHeads, int heads, int threads) {
        if (threads == 1) {
            return Integer.MAX_VALUE;
        }
        long total = layout.nnzOverHeads(queryHeads) / Math.max(1, queryHeads) * heads;
        return (int) Math.min(Integer.MAX_VALUE, Math.max(8, (total + 4L * threads - 1) / (4L * threads)));
    }

    @Override
    protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        Scratch scratch = spare.poll();
        if (scratch == null) {
            scratch = new Scratch();
        }
        try {
            run(scratch, q, k, v, out, lse);
        } finally {
            if (!isClosed()) {
                spare.offer(scratch);
            }
        }
    }

    private void run(Scratch scratch, Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        AttentionProblem problem = problem();
        BlockLayout layout = layout();
        TokenMask mask = mask();
        int queryHeads = problem.queryHeads();
        int heads = problem.batch() * queryHeads;
        float scale = problem.scale();
        parallel(heads * work.unitsPerLayout(), (w, item) -> {
            int bh = item % heads;
            int h = bh % queryHeads;
            List<WorkPlan.Unit> units = work.units(layout.headIndex(h));
            int u = item / heads;
            if (u >= units.size()) {
                return;
            }
            WorkPlan.Unit unit = units.get(u);
            int b = bh / queryHeads;
            int kvh = problem.kvHeadOf(h);
            int qb = unit.queryBlock();
            int i0 = mask.queryBegin(qb);
            TileKernel kernel = scratch.kernel(w);
            kernel.begin(q, b, h, i0, mask.validQueryEnd(b, qb) - i0, scale);
            for (int p = unit.begin(); p < unit.end(); p++) {
                kernel.block(mask, b, qb, layout.keyBlock(h, p), i0, k, v, kvh);
            }
            if (unit.slot() < 0) {
                kernel.finish(out, b, h, i0, mask.queryEnd(qb) - i0, lse, mask.lseIndex(b, h, i0));
            } else {
                kernel.save(scratch.partMax, scratch.partSum, scratch.partSeen, scratch.partAcc,
                        partBase(bh, unit.slot()));
            }
        });
        int splitsPerHead = work.splitsPerLayout();
        if (splitsPerHead > 0) {
            parallel(heads * splitsPerHead, (w, item) -> {
                int bh = item % heads;
                int h = bh % queryHeads;
                List<WorkPlan.Split> splits = work.splits(layout.headIndex(h));
                int s = item / heads;
                if (s >= splits.size()) {
                    return;
                }
                WorkPlan.Split split = splits.get(s);
                int b = bh / queryHeads;
                int qb = split.queryBlock();
                int i0 = mask.queryBegin(qb);
                scratch.kernel(w).finishSplit(scratch.partMax, scratch.partSum, scratch.partSeen, scratch.partAcc,
                        partBase(bh, split.firstSlot()), split.parts(), qRows, out, b, h, i0,
                        mask.queryEnd(qb) - i0, mask.validQueryEnd(b, qb) - i0, lse, mask.lseIndex(b, h, i0));
            });
        }
    }

    private int partBase(int bh, int slot) {
        return (bh * work.slotsPerLayout() + slot) * qRows;
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
