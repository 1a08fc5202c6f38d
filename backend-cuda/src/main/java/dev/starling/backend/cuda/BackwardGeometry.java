package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.WorkPlan;
import java.util.function.IntFunction;

/**
 * How a plan launches its backward kernels; pure Java, so it is unit-tested without a GPU. Three
 * launches of {@link #THREADS} threads, in this order on one stream:
 * <ol>
 *   <li>{@link #DELTA_KERNEL} on {@code deltaGridX × gridY}: one warp per row, {@code D} of
 *       {@code THREADS / 32} rows per CTA; no shared memory;</li>
 *   <li>{@link #DQ_KERNEL} on {@code dqGridX × gridY} over a whole-row {@link WorkPlan} (no split
 *       rows: a CTA owns its rows of {@code dQ}), {@code dqGridX = unitsPerLayout · tilesPerBlock};
 *       key tiles of {@code tileK} keys, shared memory {@link #dqShared()};</li>
 *   <li>{@link #DKDV_KERNEL} on {@code dkdvGridX × dkdvGridY}: a CTA per 64-key tile of a key
 *       block ({@code dkdvGridX = keyBlocks · keyTilesPerBlock}) and (batch, kv head)
 *       ({@code dkdvGridY = B · Hkv}); query rows in chunks of {@code rows}, shared memory
 *       {@link #dkdvShared()}.</li>
 * </ol>
 * {@code tileK} and {@code rows} are 64, or 32 or 16 when 64 does not fit the device's shared memory
 * (D = Dv = 128 on a 99 KB device takes 16).
 *
 * @param gridY {@code B · Hq}
 * @param deltaGridX {@code ceil(Nq / (THREADS / 32))}
 * @param dqGridX {@code unitsPerLayout · tilesPerBlock} of the whole-row work plan
 * @param tilesPerBlock 64-row tiles per query block
 * @param tileK keys per key tile of the dQ kernel
 * @param dqShared the dQ kernel's carve-up
 * @param dkdvGridX {@code keyBlocks · keyTilesPerBlock}
 * @param dkdvGridY {@code B · Hkv}
 * @param keyTilesPerBlock 64-key tiles per key block: {@code ceil(keyBlock / 64)}
 * @param rows query rows per chunk of the dK/dV kernel
 * @param dkdvShared the dK/dV kernel's carve-up
 */
public record BackwardGeometry(int gridY, int deltaGridX, int dqGridX, int tilesPerBlock, int tileK,
                               SharedLayout dqShared, int dkdvGridX, int dkdvGridY, int keyTilesPerBlock, int rows,
                               SharedLayout dkdvShared) {
    /** Threads of every backward kernel ({@code BWD_THREADS} in the .cu): 4 per query row or per key. */
    public static final int THREADS = 256;
    /** Symbol of the kernel computing {@code D = Σ dO·O} per row. */
    public static final String DELTA_KERNEL = "starling_bwd_delta";
    /** Symbol of the kernel computing {@code dQ}. */
    public static final String DQ_KERNEL = "starling_bwd_dq";
    /** Symbol of the kernel computing {@code dK} and {@code dV}. */
    public static final String DKDV_KERNEL = "starling_bwd_dkdv";

    /**
     * The backward launches of a problem.
     *
     * @param problem the problem
     * @param layout its layout
     * @param wholeRows the layout's work plan without split rows ({@code WorkPlan.of(layout, SplitRows.OFF)})
     * @param maxSharedBytes the device's opt-in shared memory per block
     * @return the geometry
     * @throws IllegalArgumentException if {@code wholeRows} splits rows or was made for another layout
     * @throws UnsupportedOperationException if the problem cannot be launched (head dim above 128, too many
     *         batch × heads, key blocks or units, no tile fits the shared memory)
     */
    public static BackwardGeometry of(AttentionProblem problem, BlockLayout layout, WorkPlan wholeRows, int maxSharedBytes) {
        int d = problem.headDim();
        int dv = problem.valueDim();
        if (d > LaunchGeometry.MAX_HEAD_DIM || dv > LaunchGeometry.MAX_HEAD_DIM) {
            throw new UnsupportedOperationException("cuda backward supports head dim and value dim up to "
                    + LaunchGeometry.MAX_HEAD_DIM + ", got D=" + d + ", Dv=" + dv);
        }
        if (wholeRows.layout() != layout) {
            throw new IllegalArgumentException("work plan was made for another layout than the problem's");
        }
        if (wholeRows.splitsPerLayout() != 0) {
            throw new IllegalArgumentException("the backward dQ kernel needs whole rows; the work plan splits "
                    + wholeRows.splitsPerLayout() + " rows per head layout");
        }
        long gridY = (long) problem.batch() * problem.queryHeads();
        if (gridY > LaunchGeometry.MAX_GRID_Y) {
            throw new UnsupportedOperationException("cuda backend supports batch × query heads up to "
                    + LaunchGeometry.MAX_GRID_Y + ", got " + gridY);
        }
        int tilesPerBlock = (layout.queryBlock() + LaunchGeometry.TILE_Q - 1) / LaunchGeometry.TILE_Q;
        int keyTilesPerBlock = (layout.keyBlock() + LaunchGeometry.MAX_TILE_K - 1) / LaunchGeometry.MAX_TILE_K;
        long dqGridX = (long) wholeRows.unitsPerLayout() * tilesPerBlock;
        long dkdvGridX = (long) layout.keyBlocks() * keyTilesPerBlock;
        if (dqGridX > Integer.MAX_VALUE || dkdvGridX > Integer.MAX_VALUE) {
            throw new UnsupportedOperationException("too many CTAs per head for the backward kernels: "
                    + wholeRows.unitsPerLayout() + " units × " + tilesPerBlock + " tiles, " + layout.keyBlocks()
                    + " key blocks × " + keyTilesPerBlock + " tiles");
        }
        int rowsPerCta = THREADS / 32;
        int deltaGridX = Math.max(1, (problem.queryLength() + rowsPerCta - 1) / rowsPerCta);
        int tileK = fitting(maxSharedBytes, n -> SharedLayout.forBackwardDq(d, dv, n), DQ_KERNEL, d, dv);
        int rows = fitting(maxSharedBytes, n -> SharedLayout.forBackwardDkdv(d, dv, n), DKDV_KERNEL, d, dv);
        return new BackwardGeometry((int) gridY, deltaGridX, (int) dqGridX, tilesPerBlock, tileK,
                SharedLayout.forBackwardDq(d, dv, tileK), (int) dkdvGridX,
                problem.batch() * problem.kvHeads(), keyTilesPerBlock, rows, SharedLayout.forBackwardDkdv(d, dv, rows));
    }

    /** 64 keys (or rows) when that carve-up fits the device, else 32, else 16. */
    private static int fitting(int maxSharedBytes, IntFunction<SharedLayout> carveUp, String kernel, int d, int dv) {
        for (int n : new int[] {LaunchGeometry.MAX_TILE_K, LaunchGeometry.MAX_TILE_K / 2, LaunchGeometry.MAX_TILE_K / 4}) {
            if (carveUp.apply(n).bytes() <= maxSharedBytes) {
                return n;
            }
        }
        throw new UnsupportedOperationException("cuda backward: D=" + d + ", Dv=" + dv + " needs "
                + carveUp.apply(LaunchGeometry.MAX_TILE_K / 4).bytes() + " bytes of shared memory per block for "
                + kernel + "; the device allows " + maxSharedBytes);
    }
}
