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

    /**
     * Same as {@link #forward(Tensor, Tensor, Tensor, Tensor, float[])} with the LSE written into a
     * tensor view: a float32 tensor of shape {@code [B, Hq, Nq, 1]}, element {@code (b, h, i, 0)} row
     * {@code i}'s LSE, on the heap or in a direct buffer, with any strides (e.g. {@code [B, Nq, Hq]}
     * order: {@code Tensor.of(TensorLayout.BSHD, array, B, Hq, Nq, 1)}). A packed BHSD heap view that
     * starts at element 0 is written in place; any other view is computed into a {@code B·Hq·Nq}-float
     * array and copied in after the call. Elements of the view's storage outside it are not touched.
     *
     * @param q queries {@code [B, Hq, Nq, D]}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified: every element is written.
     * @param lse the LSE view {@code [B, Hq, Nq, 1]}, float32. Modified: every element is written.
     * @throws IllegalArgumentException on a shape, type or aliasing mismatch (see
     *         {@link AttentionProblem#checkLseView}), before anything is written
     * @throws IllegalStateException after {@link #close()}
     */
    default void forwardWithLse(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        AttentionProblem p = problem();
        p.checkLseView(lse, true, "q", q, "k", k, "v", v, "out", out);
        float[] values = p.lseArray(lse, false);
        forward(q, k, v, out, values);
        p.writeLse(values, lse);
    }

    /**
     * Same as {@link #backward(Tensor, Tensor, Tensor, Tensor, float[], Tensor, Tensor, Tensor, Tensor)}
     * with the forward's LSE read from a tensor view {@code [B, Hq, Nq, 1]}, float32, as
     * {@link #forwardWithLse} writes it.
     *
     * @param q queries {@code [B, Hq, Nq, D]}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out the forward output {@code [B, Hq, Nq, Dv]}. Not modified.
     * @param lse the forward LSE view {@code [B, Hq, Nq, 1]}. Not modified.
     * @param dOut the loss gradient of the output, {@code [B, Hq, Nq, Dv]}. Not modified.
     * @param dq receives {@code dL/dQ}, shaped as {@code q}. Modified: every element is written.
     * @param dk receives {@code dL/dK}, shaped as {@code k}. Modified: every element is written.
     * @param dv receives {@code dL/dV}, shaped as {@code v}. Modified: every element is written.
     * @throws UnsupportedOperationException when the backend does not declare {@code backward}
     * @throws IllegalArgumentException on a shape mismatch or aliasing, before anything is written
     * @throws IllegalStateException after {@link #close()}
     */
    default void backwardWithLse(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                 Tensor dk, Tensor dv) {
        AttentionProblem p = problem();
        p.checkLseView(lse, false, "dq", dq, "dk", dk, "dv", dv);
        backward(q, k, v, out, p.lseArray(lse, true), dOut, dq, dk, dv);
    }

    /**
     * Gradients of a loss through attention (DESIGN section 4, capability {@code backward}), given
     * the output and LSE of a forward call on the same inputs. With {@code P} the softmax over the
     * allowed set {@code A}, {@code s} the scale:
     * {@code Dᵢ = Σ_d dOᵢd·Oᵢd}, {@code dSᵢⱼ = Pᵢⱼ·(dOᵢ·vⱼ − Dᵢ)} for {@code j ∈ A(i)},
     * {@code dQᵢ = s·Σⱼ dSᵢⱼ·kⱼ}, {@code dKⱼ = s·Σᵢ dSᵢⱼ·qᵢ}, {@code dVⱼ = Σᵢ Pᵢⱼ·dOᵢ}; with GQA a
     * key/value head's gradients sum over the query heads that read it. Keys no row reads, padded
     * positions and empty rows get zeros. Deterministic; may run from several threads at once.
     *
     * @param q queries {@code [B, Hq, Nq, D]}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out the forward output {@code [B, Hq, Nq, Dv]}. Not modified.
     * @param lse the forward LSE, {@code B·Hq·Nq} floats. Not modified.
     * @param dOut the loss gradient of the output, {@code [B, Hq, Nq, Dv]}. Not modified.
     * @param dq receives {@code dL/dQ}, shaped as {@code q}. Modified: every element is written.
     * @param dk receives {@code dL/dK}, shaped as {@code k}. Modified: every element is written.
     * @param dv receives {@code dL/dV}, shaped as {@code v}. Modified: every element is written.
     * @throws UnsupportedOperationException when the backend does not declare {@code backward}
     * @throws IllegalArgumentException on a shape mismatch or aliasing, before anything is written
     * @throws IllegalStateException after {@link #close()}
     */
    default void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk,
                          Tensor dv) {
        throw new UnsupportedOperationException("this plan does not compute gradients (capability BACKWARD)");
    }

    /** Releases threads and native memory. Idempotent. */
    @Override
    void close();
}
