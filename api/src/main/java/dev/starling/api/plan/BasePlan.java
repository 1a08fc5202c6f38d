package dev.starling.api.plan;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
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
        if (backend == null) {
            throw new IllegalArgumentException("backend must not be null");
        }
        backend.checkPlan(problem, layout);
        this.backendName = backend.name();
        this.declaresBackward = backend.capabilities().backward();
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
            compute(q, k, v, out, lse);
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
            computeBackward(q, k, v, out, lse, dOut, dq, dk, dv);
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
