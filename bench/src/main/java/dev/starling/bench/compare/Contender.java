package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import java.util.EnumSet;
import java.util.Set;

/**
 * Something {@code starling compare} times: a Starling backend on the sparse problem, or a dense
 * peer (full attention) on the same shapes.
 */
interface Contender extends AutoCloseable {

    /** @return the row label, e.g. {@code nd4j} or {@code torch-sdpa} */
    String name();

    /** @return whether it computes full (dense) attention rather than the sparse pattern */
    boolean dense();

    /** @return why it cannot run here, or {@code null} when it can */
    String unavailableReason();

    /**
     * Why it cannot run this size, or {@code null}: a dense peer refuses sizes whose scores would
     * not fit its memory budget.
     *
     * @param problem the problem
     * @return the reason, or {@code null}
     */
    default String refuses(AttentionProblem problem) {
        return null;
    }

    /**
     * The precisions it can be timed in ({@code compare --precision}); {@link #prepare} only ever gets a
     * problem whose {@link AttentionProblem#precision()} is one of them.
     *
     * @return the precisions, by default {@link Precision#FP32} alone
     */
    default Set<Precision> precisions() {
        return EnumSet.of(Precision.FP32);
    }

    /**
     * Prepares one size (plans, native copies of the inputs), outside the timing.
     *
     * @param problem the problem; its precision is the arithmetic to use, one of {@link #precisions()}
     * @param q queries, float32 (for a 16-bit precision, values already rounded to that type). Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     */
    void prepare(AttentionProblem problem, Tensor q, Tensor k, Tensor v);

    /**
     * One timed call.
     *
     * @param out where the output goes, {@code [B, H, N, Dv]} BHSD. Modified.
     */
    void run(Tensor out);

    /**
     * Why it cannot time the backward pass, or {@code null} when it can ({@code compare --backward}).
     *
     * @return the reason, or {@code null}
     */
    default String noBackward() {
        return "no backward pass";
    }

    /**
     * One timed training step of attention: the forward pass, then the backward pass from {@code dOut}
     * (the gradients of a loss with respect to the output). Only when {@link #noBackward()} is {@code null}.
     *
     * @param out the output, {@code [B, H, N, Dv]} BHSD. Modified.
     * @param dOut the output's gradient, like {@code out}. Not modified.
     * @param dq {@code dL/dQ}, like {@code q}. Modified.
     * @param dk {@code dL/dK}, like {@code k}. Modified.
     * @param dv {@code dL/dV}, like {@code v}. Modified.
     */
    default void runBackward(Tensor out, Tensor dOut, Tensor dq, Tensor dk, Tensor dv) {
        throw new UnsupportedOperationException(name() + ": " + noBackward());
    }

    /** Releases what {@link #prepare} made. */
    @Override
    void close();
}
