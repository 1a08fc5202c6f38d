package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.pattern.BlockLayout;

/**
 * How a plan launches its kernel: which kernel, threads per block, grid, key-tile size and bytes
 * of dynamic shared memory. Mirrors the shared-memory carve-up in {@code sparse_attention.cu};
 * pure Java, so it is unit-tested without a GPU.
 *
 * @param kernel the kernel's symbol
 * @param threads threads per CTA
 * @param gridX query tiles: {@code queryBlocks · ceil(queryBlock / 64)}
 * @param gridY {@code B · Hq}
 * @param tilesPerBlock 64-row tiles per query block
 * @param tileK keys per tile (64, or 32 when 64 does not fit the device's shared memory)
 * @param sharedBytes dynamic shared memory per CTA
 */
public record LaunchGeometry(String kernel, int threads, int gridX, int gridY, int tilesPerBlock, int tileK,
                             int sharedBytes) {
    /** Query rows per CTA. */
    public static final int TILE_Q = 64;
    /** Largest head dim and value dim the kernels take. */
    public static final int MAX_HEAD_DIM = 128;
    /** CUDA's limit on gridDim.y. */
    static final int MAX_GRID_Y = 65_535;

    /**
     * Chooses the launch for a problem.
     *
     * @param problem the problem
     * @param layout its layout
     * @param maxSharedBytes the device's opt-in shared memory per block
     * @return the geometry
     * @throws UnsupportedOperationException if the problem cannot be launched (head dim above 128, too many
     *         batch × heads, or no tile fits the shared memory)
     */
    public static LaunchGeometry of(AttentionProblem problem, BlockLayout layout, int maxSharedBytes) {
        int d = problem.headDim();
        int dv = problem.valueDim();
        if (d > MAX_HEAD_DIM || dv > MAX_HEAD_DIM) {
            throw new UnsupportedOperationException("cuda backend supports head dim and value dim up to " + MAX_HEAD_DIM
                    + ", got D=" + d + ", Dv=" + dv);
        }
        long gridY = (long) problem.batch() * problem.queryHeads();
        if (gridY > MAX_GRID_Y) {
            throw new UnsupportedOperationException("cuda backend supports batch × query heads up to " + MAX_GRID_Y
                    + ", got " + gridY);
        }
        int tilesPerBlock = (layout.queryBlock() + TILE_Q - 1) / TILE_Q;
        long gridX = (long) layout.queryBlocks() * tilesPerBlock;
        if (gridX > Integer.MAX_VALUE) {
            throw new UnsupportedOperationException("too many query tiles: " + gridX);
        }
        Precision p = problem.precision();
        for (int tileK : new int[] {64, 32}) {
            int bytes = sharedBytes(p, d, dv, tileK);
            if (bytes <= maxSharedBytes) {
                return new LaunchGeometry(kernelName(p), p == Precision.FP32 ? 256 : 128, (int) gridX, (int) gridY,
                        tilesPerBlock, tileK, bytes);
            }
        }
        throw new UnsupportedOperationException("cuda backend: D=" + d + ", Dv=" + dv + " in " + p + " needs "
                + sharedBytes(p, d, dv, 32) + " bytes of shared memory per block; the device allows " + maxSharedBytes);
    }

    /** @return the kernel symbol for a precision */
    static String kernelName(Precision p) {
        return switch (p) {
            case FP32 -> "starling_fp32";
            case TF32 -> "starling_tf32";
            case BF16 -> "starling_bf16";
        };
    }

    /** Dynamic shared memory of one CTA, as the kernel carves it. */
    static int sharedBytes(Precision p, int d, int dv, int tileK) {
        if (p == Precision.FP32) {
            return 4 * (TILE_Q * (d + 1) + tileK * (d + 1) + tileK * dv + TILE_Q * (tileK + 1));
        }
        int ts = p == Precision.BF16 ? 2 : 4;
        int pad = p == Precision.BF16 ? 8 : 4;
        int dpad = roundUp(d, 16);
        int dvpad = roundUp(dv, 16);
        int ldq = dpad + pad;
        int ldv = dvpad + pad;
        int ldp = tileK + pad;
        int lds = tileK + 4;
        int ldo = dvpad + 4;
        long total = 128; // alignment slack
        total += align(ts * TILE_Q * ldq) + align(ts * tileK * ldq) + align(ts * tileK * ldv);
        total += align(4 * TILE_Q * lds) + align(ts * TILE_Q * ldp) + align(4 * TILE_Q * ldo);
        total += align(4 * 4 * 256) + 3 * align(4 * TILE_Q) + align(4 * 64);
        return (int) total;
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }

    private static int align(int bytes) {
        return (bytes + 127) / 128 * 128;
    }
}
