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
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A vector plan: the shared {@link WorkPlan}'s units of every {@code (batch, query head)}, claimed
 * longest first (unit-major across heads, so BigBird's global rows start early) from a shared
 * counter by the calling thread and {@code threads − 1} daemon workers of the plan's pool (idle
 * workers end after two seconds, so a plan never closed keeps no threads);
 * each worker runs its units on its own {@link AttentionKernel}. A unit that covers a whole row writes
 * {@code O} and {@code LSE}; the parts of a split row save their unnormalised state, merged exactly
 * and written in a second step. Keys and values are read in place (the kernel broadcasts them
 * feature by feature), so a call allocates nothing of size {@code N}.
 *
 * <p>Scratch (kernels, merge slots) belongs to one call at a time and is kept for the next call,
 * so {@code forward} may run from several threads at once.
 */
final class VectorPlan extends BasePlan {
    private static final AtomicInteger POOL_IDS = new AtomicInteger();
    private static final long IDLE_SECONDS = 2;
    /** Most query rows and keys the kernel holds at once: larger blocks are walked in chunks. */
    static final int CHUNK = 128;

    private final int threads;
    private final ExecutorService pool;
    private final WorkPlan work;
    private final int dim;
    private final int vdim;
    private final int qRows;
    private final int kRows;
    private final int chunkRows;
    /** Work items in claiming order: {@code (batch · Hq + h, unit index)}. */
    private final int[] itemHead;
    private final int[] itemUnit;
    private final ConcurrentLinkedQueue<Scratch> spare = new ConcurrentLinkedQueue<>();
    /** Chunks per key/value head of the backward pass; 0 for {@link VectorBackward#chunks}. */
    private final int backwardChunks;
    private volatile VectorBackward backward;

    /** What one call owns while it runs. */
    private final class Scratch {
        final int partRows;
        final float[] partMax;
        final double[] partSum;
        final boolean[] partSeen;
        final float[] partAcc;
        final AttentionKernel[] kernels = new AttentionKernel[threads];

        Scratch() {
            AttentionProblem p = problem();
            partRows = Math.multiplyExact(Math.multiplyExact(p.batch() * p.queryHeads(), work.slotsPerLayout()), qRows);
            partMax = new float[partRows];
            partSum = new double[partRows];
            partSeen = new boolean[partRows];
            partAcc = new float[Math.multiplyExact(partRows, vdim)];
        }

        AttentionKernel kernel(int worker) {
            AttentionKernel k = kernels[worker];
            if (k == null) {
                k = new dev.starling.backend.vector.kernel.TileKernel(dim, vdim, chunkRows, Math.min(kRows, CHUNK));
                kernels[worker] = k;
            }
            return k;
        }
    }

    /** One item of {@link #parallel}: runs on worker {@code worker} (its scratch index). */
    @FunctionalInterface
    interface Step {
        void run(int worker, int item);
    }

    VectorPlan(SparseAttention backend, AttentionProblem problem, BlockLayout layout, int threads) {
        this(backend, problem, layout, threads, 0);
    }

    VectorPlan(SparseAttention backend, AttentionProblem problem, BlockLayout layout, int threads, int backwardChunks) {
        super(backend, problem, layout);
        this.threads = threads;
        this.backwardChunks = backwardChunks;
        this.dim = problem.headDim();
        this.vdim = problem.valueDim();
        this.qRows = Math.max(1, Math.min(layout.queryBlock(), problem.queryLength()));
        this.kRows = Math.max(1, Math.min(layout.keyBlock(), problem.keyLength()));
        this.chunkRows = Math.min(qRows, CHUNK);
        int heads = Math.multiplyExact(problem.batch(), problem.queryHeads());
        this.work = WorkPlan.of(layout, maxBlocksPerUnit(layout, problem.queryHeads(), heads, threads));
        int[][] order = order(work, layout, heads, problem.queryHeads());
        this.itemHead = order[0];
        this.itemUnit = order[1];
        if (threads > 1) {
            int id = POOL_IDS.incrementAndGet();
            AtomicInteger n = new AtomicInteger();
            ThreadFactory factory = r -> {
                Thread t = new Thread(r, "starling-vector-" + id + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            };
            // Idle workers end after a few seconds, so a plan dropped without close() gives its threads back.
            ThreadPoolExecutor executor = new ThreadPoolExecutor(threads - 1, threads - 1, IDLE_SECONDS, TimeUnit.SECONDS,
                    new LinkedBlockingQueue<>(), factory);
            executor.allowCoreThreadTimeOut(true);
            this.pool = executor;
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

    /**
     * The order work items are claimed in. Long units (more than twice a head's median unit, such as
     * BigBird's global rows) come first, longest first across all heads, so no thread is left with
     * one at the end; then each head's other units in query-block order, so that neighbouring
     * query blocks, which share most of their key blocks (the window), run while those key and
     * value blocks are still in cache.
     *
     * @param work the work plan
     * @param layout the layout
     * @param heads {@code B·Hq}
     * @param queryHeads {@code Hq}
     * @return {@code {heads of the items, unit indices of the items}}
     */
    static int[][] order(WorkPlan work, BlockLayout layout, int heads, int queryHeads) {
        long total = 0;
        int[] longBelow = new int[work.headLayouts()];
        for (int hl = 0; hl < work.headLayouts(); hl++) {
            List<WorkPlan.Unit> units = work.units(hl);
            // Units are sorted longest first: the median is in the middle.
            int median = units.isEmpty() ? 0 : units.get(units.size() / 2).blocks();
            int count = 0;
            while (count < units.size() && units.get(count).blocks() > 2 * median) {
                count++;
            }
            longBelow[hl] = count;
        }
        for (int bh = 0; bh < heads; bh++) {
            total += work.units(layout.headIndex(bh % queryHeads)).size();
        }
        int n = Math.toIntExact(total);
        int[] itemHead = new int[n];
        int[] itemUnit = new int[n];
        int at = 0;
        for (int u = 0; u < work.unitsPerLayout(); u++) {
            for (int bh = 0; bh < heads; bh++) {
                if (u < longBelow[layout.headIndex(bh % queryHeads)]) {
                    itemHead[at] = bh;
                    itemUnit[at++] = u;
                }
            }
        }
        for (int bh = 0; bh < heads; bh++) {
            int hl = layout.headIndex(bh % queryHeads);
            List<WorkPlan.Unit> units = work.units(hl);
            Integer[] rest = new Integer[units.size() - longBelow[hl]];
            for (int x = 0; x < rest.length; x++) {
                rest[x] = longBelow[hl] + x;
            }
            java.util.Arrays.sort(rest, java.util.Comparator.comparingInt((Integer u) -> units.get(u).queryBlock())
                    .thenComparingInt(u -> units.get(u).begin()));
            for (int u : rest) {
                itemHead[at] = bh;
                itemUnit[at++] = u;
            }
        }
        return new int[][] {itemHead, itemUnit};
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
        parallel(itemHead.length, (w, item) -> {
            int bh = itemHead[item];
            int h = bh % queryHeads;
            WorkPlan.Unit unit = work.units(layout.headIndex(h)).get(itemUnit[item]);
            int b = bh / queryHeads;
            int kvh = problem.kvHeadOf(h);
            int qb = unit.queryBlock();
            int begin = mask.queryBegin(qb);
            int end = mask.queryEnd(qb);
            int valid = mask.validQueryEnd(b, qb);
            AttentionKernel kernel = scratch.kernel(w);
            // A query block larger than the kernel's rows is walked in chunks of rows.
            for (int i0 = begin; i0 < end; i0 += chunkRows) {
                int total = Math.min(chunkRows, end - i0);
                kernel.begin(q, b, h, i0, Math.max(0, Math.min(total, valid - i0)), scale);
                for (int p = unit.begin(); p < unit.end(); p++) {
                    kernel.block(mask, b, qb, layout.keyBlock(h, p), i0, k, v, kvh, (float) mask.logWeight(h, p));
                }
                if (unit.slot() < 0) {
                    kernel.finish(out, b, h, i0, total, lse, mask.lseIndex(b, h, i0));
                } else {
                    kernel.save(scratch.partMax, scratch.partSum, scratch.partSeen, scratch.partAcc,
                            partBase(bh, unit.slot()) + (i0 - begin));
                }
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
    void parallel(int items, Step step) {
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
                failure = new IllegalStateException("interrupted during the call");
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
    protected void computeBackward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                   Tensor dk, Tensor dv) {
        backward().run(q, k, v, out, lse, dOut, dq, dk, dv);
    }

    /** The backward pass's plan-time tables, built on the first backward call. */
    private VectorBackward backward() {
        VectorBackward b = backward;
        if (b == null) {
            synchronized (this) {
                if (backward == null) {
                    backward = new VectorBackward(this, backwardChunks);
                }
                b = backward;
            }
        }
        return b;
    }

    /** @return threads per call */
    int threads() {
        return threads;
    }

    /** @return whether the plan is closed (for scratch that must not be kept) */
    boolean isClosedNow() {
        return isClosed();
    }

    @Override
    protected void release() {
        spare.clear();
        VectorBackward b = backward;
        if (b != null) {
            b.clear();
        }
        if (pool != null) {
            // Every call has returned (BasePlan waits) and each waits for its workers; this only lets the
            // pool's threads end before close() returns.
            shutdownAndWait(pool);
        }
    }
}
