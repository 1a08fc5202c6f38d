package dev.starling.api.plan;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * What every backend's plan shares (DESIGN section 3b): the checks, done once and in one order,
 * and the open/closed life cycle. A backend extends it and writes {@link #compute} and, if it
 * holds resources, {@link #release()}.
 *
 * <p>At creation: the problem is not null, the layout fits it, and the backend's capabilities
 * cover it ({@link SparseAttention#checkPlan}); the {@link TokenMask} is built. On every
 * {@link #forward}: the plan is open, every tensor has the problem's shape, and no output shares
 * its array with an input or with the other output — all before anything is written. Only then
 * does {@link #compute} run.
 *
 * <p>Closing: {@link #close()} waits for the {@code forward} calls already running to finish
 * (they complete normally), then releases; a {@code forward} that starts after {@code close}
 * throws {@link IllegalStateException}. Nothing is released under a running call.
 */
public abstract class BasePlan implements AttentionPlan {
    private final String backendName;
    private final boolean declaresBackward;
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final TokenMask mask;
    private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();
    private volatile boolean closed;
    private final Set<Feature> tensorFeatures;
    private final AtomicLong convertedBytes = new AtomicLong();

    /**
     * Checks the problem and layout against the backend and builds the token mask.
     *
     * @param backend the backend creating the plan (its name and capabilities)
     * @param problem the problem. Not modified.
     * @param layout the layout. Not modified.
     * @throws IllegalArgumentException if the problem is null or the layout does not fit it
     * @throws UnsupportedOperationException naming each capability the problem needs and the backend lacks
     */
    protected BasePlan(SparseAttention backend, AttentionProblem problem, BlockLayout layout) {
        this(backend, backend == null ? null : backend.capabilities(), problem, layout);
    }

    /**
     * Same, for a plan whose options give it capabilities of its own (checked instead of the
     * backend's defaults).
     *
     * @param backend the backend creating the plan (its name)
     * @param planCapabilities what this plan computes
     * @param problem the problem. Not modified.
     * @param layout the layout. Not modified.
     * @throws IllegalArgumentException if the problem is null or the layout does not fit it
     * @throws UnsupportedOperationException naming each capability the problem needs and the plan lacks
     */
    protected BasePlan(SparseAttention backend, Capabilities planCapabilities, AttentionProblem problem,
                       BlockLayout layout) {
        if (backend == null) {
            throw new IllegalArgumentException("backend must not be null");
        }
        backend.checkPlan(problem, layout, planCapabilities);
        this.backendName = backend.name();
        this.declaresBackward = planCapabilities.has(Feature.BACKWARD);
        this.tensorFeatures = planCapabilities.features();
        this.problem = problem;
        this.layout = layout;
        this.mask = TokenMask.of(problem, layout);
    }

    @Override
    public final AttentionProblem problem() {
        return problem;
    }

    @Override
    public final BlockLayout layout() {
        return layout;
    }

    /** @return the token mask of this plan's problem and layout */
    public final TokenMask mask() {
        return mask;
    }

    /** @return the name of the backend that made this plan */
    public final String backendName() {
        return backendName;
    }

    @Override
    public final void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        whileOpen(() -> {
            problem.checkInputs(q, k, v, out, lse);
            Tensor o = outputFor(out);
            compute(inputFor(q), inputFor(k), inputFor(v), o, lse);
            writeBack(o, out);
            return null;
        });
    }

    /**
     * The backend's arithmetic, called only after every check of {@link #forward} passed, while
     * the plan is open. Must write every element of {@code out} (and of {@code lse} when given)
     * and never modify an input. May run on several threads at once.
     *
     * @param q queries {@code [B, Hq, Nq, D]}, checked. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}, checked. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}, checked. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]}, checked, sharing no array with an input. Modified.
     * @param lse {@code [B, Hq, Nq]} or {@code null}, checked. Modified.
     */
    protected abstract void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse);

    @Override
    public final void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk,
                               Tensor dv) {
        whileOpen(() -> {
            if (!declaresBackward) {
                throw new UnsupportedOperationException(backendName + " backend does not declare BACKWARD");
            }
            problem.checkGradients(q, k, v, out, lse, dOut, dq, dk, dv);
            Tensor gq = outputFor(dq);
            Tensor gk = outputFor(dk);
            Tensor gv = outputFor(dv);
            computeBackward(inputFor(q), inputFor(k), inputFor(v), inputFor(out), lse, inputFor(dOut), gq, gk, gv);
            writeBack(gq, dq);
            writeBack(gk, dk);
            writeBack(gv, dv);
            return null;
        });
    }

    /**
     * The backend's gradient arithmetic (see {@link dev.starling.api.AttentionPlan#backward}), called
     * only when the backend declares {@code backward} and every check passed, while the plan is open.
     * Must write every element of {@code dq}, {@code dk} and {@code dv}, never modify an input, give
     * the same bits on every call, and be safe on several threads at once.
     *
     * @param q queries, checked. Not modified.
     * @param k keys, checked. Not modified.
     * @param v values, checked. Not modified.
     * @param out forward output, checked. Not modified.
     * @param lse forward LSE, checked. Not modified.
     * @param dOut output gradient, checked. Not modified.
     * @param dq receives {@code dL/dQ}. Modified.
     * @param dk receives {@code dL/dK}. Modified.
     * @param dv receives {@code dL/dV}. Modified.
     */
    protected void computeBackward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                   Tensor dk, Tensor dv) {
        throw new UnsupportedOperationException(backendName + " backend declares BACKWARD but its plan does not "
                + "implement computeBackward");
    }

    /**
     * Whether this plan's backend reads {@code t} as it is: float32 (or a 16-bit type it declared),
     * on the heap (or off-heap if it declared {@link Feature#OFF_HEAP_TENSORS}), packed (or any view
     * with contiguous rows if it declared {@link Feature#STRIDED_TENSORS}).
     *
     * @param t a checked tensor
     * @return whether {@link #compute} may receive it unconverted
     */
    public final boolean readsAsIs(Tensor t) {
        boolean type = switch (t.type()) {
            case FP32 -> true;
            case BF16 -> tensorFeatures.contains(Feature.BF16_TENSORS);
            case FP16 -> tensorFeatures.contains(Feature.FP16_TENSORS);
        };
        boolean storage = t.onHeap() || tensorFeatures.contains(Feature.OFF_HEAP_TENSORS);
        boolean shape = t.isPacked() || (t.rowsContiguous() && tensorFeatures.contains(Feature.STRIDED_TENSORS));
        return type && storage && shape;
    }

    /**
     * @return bytes of float32 copies this plan has made so far to hand its backend tensors it does
     *         not read as they are (inputs widened and packed, outputs computed into scratch and
     *         rounded back): 0 when every call's tensors were native to the backend
     */
    public final long convertedBytes() {
        return convertedBytes.get();
    }

    private Tensor inputFor(Tensor t) {
        if (readsAsIs(t)) {
            return t;
        }
        convertedBytes.addAndGet(4L * t.batch() * t.heads() * t.length() * t.dim());
        return t.toFloat32();
    }

    private Tensor outputFor(Tensor t) {
        if (readsAsIs(t)) {
            return t;
        }
        convertedBytes.addAndGet(4L * t.batch() * t.heads() * t.length() * t.dim());
        return Tensor.zeros(t.layout(), t.batch(), t.heads(), t.length(), t.dim());
    }

    private static void writeBack(Tensor computed, Tensor out) {
        if (computed != out) {
            out.copyFrom(computed);
        }
    }

    /**
     * Runs {@code call} while the plan is open, so {@link #close()} waits for it: for a backend's
     * other entry points (device pointers, say). Throws {@link IllegalStateException} when closed.
     *
     * @param call the work
     * @param <T> its result type
     * @return its result
     */
    protected final <T> T whileOpen(Supplier<T> call) {
        lifecycle.readLock().lock();
        try {
            if (closed) {
                throw new IllegalStateException("forward called on a closed " + backendName + " plan");
            }
            return call.get();
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    /** @return whether {@link #close()} has been called */
    protected final boolean isClosed() {
        return closed;
    }

    /**
     * Shuts {@code pool} down and waits until its threads have ended, however long that takes and even
     * if this thread is interrupted (its interrupt status is kept): for {@link #release()}, so that once
     * {@link #close()} returned no worker of the plan runs.
     *
     * @param pool the plan's worker pool. Modified (shut down).
     */
    protected static void shutdownAndWait(java.util.concurrent.ExecutorService pool) {
        pool.shutdown();
        boolean interrupted = false;
        while (true) {
            try {
                if (pool.awaitTermination(1, java.util.concurrent.TimeUnit.DAYS)) {
                    break;
                }
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Frees what the plan holds (threads, native memory). Called once, by the first
     * {@link #close()}, after every running {@code forward} returned. Does nothing by default.
     */
    protected void release() {
    }

    @Override
    public final void close() {
        if (closed) {
            return;
        }
        lifecycle.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                release();
            }
        } finally {
            lifecycle.writeLock().unlock();
        }
    }
}
