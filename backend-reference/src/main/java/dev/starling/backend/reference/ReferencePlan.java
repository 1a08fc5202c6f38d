package dev.starling.backend.reference;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A reference plan: work items are {@code (batch, head, query block)} triples, claimed in order
 * by the plan's worker threads; each worker runs {@link BlockKernel} on its items with scratch
 * buffers allocated once per call. Different calls share nothing mutable, so {@code forward}
 * may run from several threads at once.
 */
final class ReferencePlan implements AttentionPlan {
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final boolean causal;
    private final int threads;
    private final ExecutorService pool;
    private volatile boolean closed;

    ReferencePlan(AttentionProblem problem, BlockLayout layout, int threads) {
        this.problem = problem;
        this.layout = layout;
        this.causal = problem.effectiveCausal(layout);
        this.threads = threads;
        int id = POOL_IDS.incrementAndGet();
        AtomicInteger n = new AtomicInteger();
        ThreadFactory factory = r -> {
            Thread t = new Thread(r, "starling-reference-" + id + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        this.pool = Executors.newFixedThreadPool(threads, factory);
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
    public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        if (closed) {
            throw new IllegalStateException("forward called on a closed reference plan");
        }
        problem.checkInputs(q, k, v, out, lse);
        int items = problem.batch() * problem.queryHeads() * layout.queryBlocks();
        AtomicInteger next = new AtomicInteger();
        int workers = Math.min(threads, items);
        List<Callable<Void>> tasks = new ArrayList<>(workers);
        for (int w = 0; w < workers; w++) {
            tasks.add(() -> {
                BlockKernel kernel = new BlockKernel(problem, layout, causal, q, k, v, out, lse);
                for (int item = next.getAndIncrement(); item < items; item = next.getAndIncrement()) {
                    int qb = item % layout.queryBlocks();
                    int bh = item / layout.queryBlocks();
                    kernel.run(bh / problem.queryHeads(), bh % problem.queryHeads(), qb);
                }
                return null;
            });
        }
        try {
            for (Future<Void> f : pool.invokeAll(tasks)) {
                f.get();
            }
        } catch (RejectedExecutionException e) {
            throw new IllegalStateException("reference plan was closed during forward", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during forward", e);
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

    @Override
    public void close() {
        closed = true;
        pool.shutdownNow();
    }
}
