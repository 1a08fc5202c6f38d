package dev.starling.backend.vector;

/**
 * A worker's backward kernel, as {@link VectorBackward} drives it: one work unit is a contiguous
 * chunk of the key blocks of one {@code (batch, key/value head)}. For each key block of the chunk
 * the kernel recomputes, for every reading of it ({@link dev.starling.api.plan.LayoutColumns}: the
 * query heads of the group, then the query blocks that read it, ascending), {@code P = exp(s·q·k − LSE)},
 * {@code dP = dO·vᵀ} and {@code dS = P·(dP − D)}; sums {@code dV = Pᵀ·dO} and {@code dK = s·dSᵀ·Q}
 * for the block and writes them; and adds {@code s·dS·K} into the chunk's {@code dQ} slot of each
 * query block it reads. Only rows marked {@link GradientCall#ACTIVE} take part.
 *
 * <p>Internal to this module (public only so that its implementation on the Vector API,
 * {@code dev.starling.backend.vector.kernel.GradientTileKernel}, can live in the package that
 * imports it). One instance per worker: not thread-safe.
 */
public interface GradientKernel {

    /**
     * Runs one work unit: zeroes the chunk's {@code dQ} slots, then walks its key blocks in order.
     *
     * @param call the call's inputs, row state and {@code dQ} slots. Modified: this unit's slots, and
     *             {@code dk}, {@code dv} for the keys of its key blocks.
     * @param b batch entry
     * @param kvh key/value head
     * @param chunk chunk of the key blocks of {@code kvh} ({@link GradientCall#chunkStart})
     */
    void unit(GradientCall call, int b, int kvh, int chunk);
}
