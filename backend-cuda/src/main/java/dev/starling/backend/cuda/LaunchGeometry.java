package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.WorkPlan;

/**
 * How a plan launches its kernels; pure Java, so it is unit-tested without a GPU.
 *
 * <p>The attention kernel's grid runs over the {@link WorkPlan}'s packed units:
 * {@code gridX = unitsPerLayout · tilesPerBlock} (unit {@code x / tilesPerBlock}, 64-row tile
 * {@code x % tilesPerBlock} of its query block) and {@code gridY = B · Hq}. When the work plan
 * splits rows, the merge kernel {@code starling_merge} runs after it on a
 * {@code splitsPerLayout × (B · Hq)} grid, and the split parts write into a workspace of
 * {@code B · Hq · slotsPerLayout · queryBlock} rows: {@code Dv} floats of normalised partial output
 * and one float of LSE each.
 *
 * @param kernel the attention kernel's symbol
 * @param threads threads per CTA of the attention kernel
 * @param gridX {@code unitsPerLayout · tilesPerBlock}
 * @param gridY {@code B · Hq}
 * @param tilesPerBlock 64-row tiles per query block: {@code ceil(queryBlock / 64)}
 * @param tileK keys per key tile (64, or 32 when 64 does not fit the device's shared memory)
 * @param shared the shared-memory carve-up; {@code shared.bytes()} is launched
 * @param mergeGridX split rows per head layout: the merge kernel's grid x, 0 when nothing is split
 * @param workspaceRows rows of the split-row workspace, 0 when nothing is split
 * @param workspaceOutFloats floats of its partial outputs: {@code workspaceRows · Dv}
 */
public record LaunchGeometry(String kernel, int threads, int gridX, int gridY, int tilesPerBlock, int tileK,
                             SharedLayout shared, int mergeGridX, long workspaceRows, long workspaceOutFloats) {
    /** Query rows per CTA ({@code TILE_Q} in the .cu). */
    public static final int TILE_Q = 64;
    /** Most keys per key tile ({@code MAX_TILE_K} in the .cu). */
    public static final int MAX_TILE_K = 64;
    /** Largest head dim and value dim the kernels take. */
    public static final int MAX_HEAD_DIM = 128;
    /** Threads of the fp32 kernel: 4 per query row ({@code FP32_THREADS} in the .cu). */
    public static final int FP32_THREADS = 256;
    /** Threads of the tensor-core kernels: 4 warps of 16 rows ({@code MMA_THREADS} in the .cu). */
    public static final int MMA_THREADS = 128;
    /** Threads of the merge kernel ({@code MERGE_THREADS} in the .cu). */
    public static final int MERGE_THREADS = 128;
    /** Symbol of the kernel that merges split rows. */
    public static final String MERGE_KERNEL = "starling_merge";
    /** CUDA's limit on gridDim.y. */
    static final int MAX_GRID_Y = 65_535;

    /**
     * Chooses the launches for a problem and its work plan.
     *
     * @param problem the problem
     * @param layout its layout
     * @param work the layout's work plan (units and split rows)
     * @param maxSharedBytes the device's opt-in shared memory per block
     * @return the geometry
     * @throws UnsupportedOperationException if the problem cannot be launched (head dim above 128, too many
     *         batch × heads or units, no key tile fits the shared memory, a workspace beyond 2^63 bytes)
     */
    public static LaunchGeometry of(AttentionProblem problem, BlockLayout layout, WorkPlan work, int maxSharedBytes) {
        int d = problem.headDim();
        int dv = problem.valueDim();
        if (d > MAX_HEAD_DIM || dv > MAX_HEAD_DIM) {
            throw new UnsupportedOperationException("cuda backend supports head dim and value dim up to " + MAX_HEAD_DIM
                    + ", got D=" + d + ", Dv=" + dv);
        }
        if (work.layout() != layout) {
            throw new IllegalArgumentException("work plan was made for another layout than the problem's");
        }
        long gridY = (long) problem.batch() * problem.queryHeads();
        if (gridY > MAX_GRID_Y) {
            throw new UnsupportedOperationException("cuda backend supports batch × query heads up to " + MAX_GRID_Y
                    + ", got " + gridY);
        }
        int tilesPerBlock = (layout.queryBlock() + TILE_Q - 1) / TILE_Q;
        long gridX = (long) work.unitsPerLayout() * tilesPerBlock;
        if (gridX > Integer.MAX_VALUE) {
            throw new UnsupportedOperationException("too many CTAs per head: " + work.unitsPerLayout() + " units × "
                    + tilesPerBlock + " tiles");
        }
        long workspaceRows;
        long workspaceOutFloats;
        try {
            workspaceRows = Math.multiplyExact(Math.multiplyExact(gridY, (long) work.slotsPerLayout()),
                    (long) layout.queryBlock());
            workspaceOutFloats = Math.multiplyExact(workspaceRows, (long) dv);
            Math.multiplyExact(workspaceOutFloats + workspaceRows, (long) Float.BYTES);
        } catch (ArithmeticException e) {
            throw new UnsupportedOperationException("split-row workspace of " + gridY + " heads × " + work.slotsPerLayout()
                    + " slots × " + layout.queryBlock() + " rows × " + dv + " features overflows");
        }
        Precision p = problem.precision();
        int threads = p == Precision.FP32 ? FP32_THREADS : MMA_THREADS;
        for (int tileK : new int[] {MAX_TILE_K, MAX_TILE_K / 2}) {
            SharedLayout shared = SharedLayout.of(p, d, dv, tileK);
            if (shared.bytes() <= maxSharedBytes) {
                return new LaunchGeometry(kernelName(p), threads, (int) gridX, (int) gridY, tilesPerBlock, tileK, shared,
                        work.splitsPerLayout(), workspaceRows, workspaceOutFloats);
            }
        }
        throw new UnsupportedOperationException("cuda backend: D=" + d + ", Dv=" + dv + " in " + p + " needs "
                + SharedLayout.of(p, d, dv, MAX_TILE_K / 2).bytes() + " bytes of shared memory per block; the device allows "
                + maxSharedBytes);
    }

    /** @return the dynamic shared memory of one attention CTA, in bytes */
    public int sharedBytes() {
        return shared.bytes();
    }

    /** @return whether split rows are merged by a second kernel (and a workspace is needed) */
    public boolean merges() {
        return mergeGridX > 0;
    }

    /** @return bytes of the workspace's partial outputs, 0 when nothing is split */
    public long workspaceOutBytes() {
        return workspaceOutFloats * Float.BYTES;
    }

    /** @return bytes of the workspace's partial LSEs, 0 when nothing is split */
    public long workspaceLseBytes() {
        return workspaceRows * Float.BYTES;
    }

    /** @return the kernel symbol for a precision */
    static String kernelName(Precision p) {
        return switch (p) {
            case FP32 -> "starling_fp32";
            case TF32 -> "starling_tf32";
            case BF16 -> "starling_bf16";
        };
    }
}
