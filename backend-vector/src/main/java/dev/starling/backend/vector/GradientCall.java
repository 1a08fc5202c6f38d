package dev.starling.backend.vector;

import dev.starling.api.Tensor;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.TokenMask;

/**
 * What the workers of one backward call share: the checked tensors, the per-row state computed
 * before the sweep, the plan's chunking of key blocks and the {@code dQ} slots the units add into.
 *
 * <p>Internal to this module (public for {@link GradientKernel}'s implementation in the kernel
 * package). Workers read every field; each writes only its own unit's slots and key blocks.
 */
public final class GradientCall {
    /** Row state: contributes nothing (padded, empty, {@code dO = 0}). */
    public static final byte SKIP = 0;
    /** Row state: computed by the fast sweep. */
    public static final byte ACTIVE = 1;
    /** Row state: reads a non-finite input; recomputed exactly in float64 after the sweep. */
    public static final byte TAINTED = 2;

    /** The plan's token mask. */
    public final TokenMask mask;
    /** The layout by key block. */
    public final LayoutColumns columns;
    /** Queries {@code [B, Hq, Nq, D]}. Not modified. */
    public final Tensor q;
    /** Keys {@code [B, Hkv, Nk, D]}. Not modified. */
    public final Tensor k;
    /** Values {@code [B, Hkv, Nk, Dv]}. Not modified. */
    public final Tensor v;
    /** Output gradient {@code [B, Hq, Nq, Dv]}. Not modified. */
    public final Tensor dOut;
    /** Forward LSE {@code [B, Hq, Nq]}. Not modified. */
    public final float[] lse;
    /** Key gradient. Modified by the unit that owns each key block. */
    public final Tensor dk;
    /** Value gradient. Modified likewise. */
    public final Tensor dv;
    /** Whether some key or value is not finite (then key tiles are packed with those values as 0). */
    public final boolean badKeys;
    /** {@code Dᵢ = Σ dOᵢ·Oᵢ} per row (LSE index). */
    public final float[] delta;
    /** {@link #SKIP}, {@link #ACTIVE} or {@link #TAINTED} per row (LSE index). */
    public final byte[] rowState;
    /** Per key/value head, the first key block of each chunk and, last, the number of key blocks. */
    public final int[][] chunkStart;
    /** Per query head, the slot of {@code (chunk, query block)} at {@code chunk·queryBlocks + qb}, or −1. */
    public final int[][] slotIndex;
    /** Slots per batch entry. */
    public final int slotsPerBatch;
    /** Floats per slot: the rows of a query block × {@code D} padded to whole vectors. */
    public final int slotFloats;
    /** Row stride of a slot: {@code D} padded to whole vectors. */
    public final int slotStride;
    /** The {@code dQ} partial slots ({@code s} is folded into the packed keys). Modified. */
    public final float[] dqSlots;
    /**
     * With one chunk per head, the query gradient itself, zeroed before the sweep: units add into its
     * rows directly (each row is then written by one unit only) and {@link #dqSlots} is unused; else
     * {@code null}.
     */
    public final Tensor dq;

    GradientCall(TokenMask mask, LayoutColumns columns, Tensor q, Tensor k, Tensor v, Tensor dOut, float[] lse, Tensor dk,
                 Tensor dv, boolean badKeys, float[] delta, byte[] rowState, int[][] chunkStart, int[][] slotIndex, int slotsPerBatch,
                 int slotFloats, int slotStride, float[] dqSlots, Tensor dq) {
        this.mask = mask;
        this.columns = columns;
        this.q = q;
        this.k = k;
        this.v = v;
        this.dOut = dOut;
        this.lse = lse;
        this.dk = dk;
        this.dv = dv;
        this.badKeys = badKeys;
        this.delta = delta;
        this.rowState = rowState;
        this.chunkStart = chunkStart;
        this.slotIndex = slotIndex;
        this.slotsPerBatch = slotsPerBatch;
        this.slotFloats = slotFloats;
        this.slotStride = slotStride;
        this.dqSlots = dqSlots;
        this.dq = dq;
    }
}
