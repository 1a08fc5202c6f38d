package dev.starling.backend.reference;

import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.plan.WorkPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import java.util.function.Supplier;

/**
 * A reference plan: work items are {@code (batch, head, query block)} triples taken from the
 * shared {@link WorkPlan} (whole rows, longest first, so BigBird's global rows start early),
 * claimed in order by the plan's worker threads; each worker runs {@link BlockKernel} on its items
 * with scratch buffers allocated once per call. Different calls share nothing mutable, so
 * {@code forward} may run from several threads at once.
 */
final class ReferencePlan extends BasePlan {
    private static final AtomicInteger POOL_IDS = new AtomicInteger();
    private static final long IDLE_SECONDS = 2;

    private final int threads;
    private final ExecutorService pool;
    /** Per head layout: the query blocks, longest row first. */
    private final int[][] order;
    private volatile LayoutColumns columns;

    ReferencePlan(SparseAttention backend, AttentionProblem problem, BlockLayout layout, int threads) {
        super(backend, problem, layout);
        this.threads = threads;
        WorkPlan work = WorkPlan.of(layout, Integer.MAX_VALUE);
        this.order = new int[work.headLayouts()][];
        for (int hl = 0; hl < work.headLayouts(); hl++) {
            order[hl] = work.units(hl).stream().mapToInt(WorkPlan.Unit::queryBlock).toArray();
        }
        int id = POOL_IDS.incrementAndGet();
        AtomicInteger n = new AtomicInteger();
        ThreadFactory factory = r -> {
            Thread t = new Thread(r, "starling-reference-" + id + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        // Idle workers end after a few seconds, so a plan dropped without close() leaks no threads.
        ThreadPoolExecutor executor = new ThreadPoolExecutor(threads, threads, IDLE_SECONDS, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), factory);
        executor.allowCoreThreadTimeOut(true);
        this.pool = executor;
    }

    @Override
    protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        TokenMask mask = mask();
        int heads = problem().queryHeads();
        int rows = problem().batch() * heads;
        parallel(rows * layout().queryBlocks(), () -> {
            BlockKernel kernel = new BlockKernel(mask, q, k, v, out, lse);
            return item -> {
                // Unit-major: every (batch, head) does its longest rows first.
                int bh = item % rows;
                int h = bh % heads;
                kernel.run(bh / heads, h, order[layout().headIndex(h)][item / rows]);
            };
        });
    }

    @Override
    protected void computeBackward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                   Tensor dk, Tensor dv) {
        AttentionProblem p = problem();
        double[] delta = new double[p.lseSize()];
        boolean[] skip = new boolean[p.lseSize()];
        double[] rowMax = new double[p.lseSize()];
        double[] rowLogSum = new double[p.lseSize()];
        LayoutColumns cols = columns();
        int qBlocks = layout().queryBlocks();
        parallel(p.batch() * p.queryHeads() * qBlocks, () -> {
            BackwardKernel kernel = new BackwardKernel(mask(), cols, q, k, v, out, lse, dOut, delta, skip, rowMax,
                    rowLogSum);
            return item -> {
                int bh = item / qBlocks;
                kernel.queryBlock(bh / p.queryHeads(), bh % p.queryHeads(), item % qBlocks, dq);
            };
        });
        int kBlocks = layout().keyBlocks();
        parallel(p.batch() * p.kvHeads() * kBlocks, () -> {
            BackwardKernel kernel = new BackwardKernel(mask(), cols, q, k, v, out, lse, dOut, delta, skip, rowMax,
                    rowLogSum);
            return item -> {
                int bh = item / kBlocks;
                kernel.keyBlock(bh / p.kvHeads(), bh % p.kvHeads(), item % kBlocks, dk, dv);
            };
        });
    }

    /** The layout's columns, built on the first backward call. */
    private LayoutColumns columns() {
        LayoutColumns c = columns;
        if (c == null) {
            synchronized (this) {
                if (columns == null) {
                    columns = LayoutColumns.of(layout());
                }
                c = columns;
            }
        }
        return c;
    }

    /**
     * Runs items {@code [0, items)} on the pool: each worker makes its own scratch through
     * {@code worker} and claims items in order. Returns, normally or not, only once every worker of
     * this call has stopped: when one fails or the caller is interrupted the others stop at their
     * next item, and no thread of the call writes to the caller's buffers after it returns.
     */
    private void parallel(int items, Supplier<IntConsumer> worker) {
        AtomicInteger next = new AtomicInteger();
        AtomicBoolean stop = new AtomicBoolean();
        int workers = Math.min(threads, items);
        CountDownLatch done = new CountDownLatch(workers);
        List<Future<?>> futures = new ArrayList<>(workers);
        RuntimeException refused = null;
        for (int w = 0; w < workers; w++) {
            try {
                futures.add(pool.submit(() -> {
                    try {
                        IntConsumer run = worker.get();
                        for (int item = next.getAndIncrement(); item < items && !stop.get(); item = next.getAndIncrement()) {
                            run.accept(item);
                        }
                    } catch (Throwable t) {
                        stop.set(true);
                        throw t;
                    } finally {
                        done.countDown();
                    }
                    return null;
                }));
            } catch (RejectedExecutionException e) {
                stop.set(true);
                done.countDown();
                refused = new IllegalStateException("the reference plan is closed", e);
            }
        }
        boolean interrupted = false;
        while (true) {
            try {
                done.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
                stop.set(true);
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during a reference plan call");
        }
        if (refused != null) {
            throw refused;
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted during a reference plan call", e);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof RuntimeException re) {
                    throw re;
                }
                if (cause instanceof Error err) {
                    throw err;
                }
                throw new IllegalStateException(cause);
            }
        }
    }

    /** Stops taking calls and waits for the workers of calls still running to stop. */
    @Override
    protected void release() {
        shutdownAndWait(pool);
    }
}
