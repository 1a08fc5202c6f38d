package dev.starling.api;

import dev.starling.api.pattern.BlockLayout;

/**
 * Block-sparse attention prepared for one problem and one layout. {@link #forward} may be called
 * many times and from several threads at once. Closing releases threads and native memory;
 * {@code forward} after {@code close} throws {@link IllegalStateException}.
 */
public interface AttentionPlan extends AutoCloseable {

    /** @return the problem this plan computes */
    AttentionProblem problem();

    /** @return the block layout this plan computes */
    BlockLayout layout();

    /**
     * Computes {@code O = softmax_A(s·Q·Kᵀ)·V} and optionally {@code LSE} over the allowed sets
     * {@code A} of DESIGN section 2.
     *
     * @param q queries {@code [B, Hq, Nq, D]} (either layout). Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified: every element is written.
     * @param lse {@code B·Hq·Nq} floats in {@code [B, Hq, Nq]} order, or {@code null} to skip.
     *            Modified: every element is written; empty rows get {@code −∞}.
     * @throws IllegalArgumentException on any shape mismatch, before anything is written
     * @throws IllegalStateException after {@link #close()}
     */
    void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse);

    /**
     * Same as {@link #forward(Tensor, Tensor, Tensor, Tensor, float[])} without LSE.
     */
    default void forward(Tensor q, Tensor k, Tensor v, Tensor out) {
        forward(q, k, v, out, null);
    }

    /** Releases threads and native memory. Idempotent. */
    @Override
    void close();
}
