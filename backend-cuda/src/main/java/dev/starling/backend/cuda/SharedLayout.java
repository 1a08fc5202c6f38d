package dev.starling.backend.cuda;

import dev.starling.api.Precision;

/**
 * The carve-up of one CTA's dynamic shared memory, computed once on the host and passed to the
 * kernel in its parameter struct ({@link KernelParams}), so the kernel and its launch cannot
 * disagree: buffer {@code X} starts {@code X} bytes after the kernel's base, the dynamic shared
 * memory rounded up to {@link #ALIGN} bytes; {@link #bytes()} is what the launch asks for
 * (every buffer plus {@code ALIGN} bytes of slack for that rounding).
 *
 * <p>fp32 kernel ({@code starling_fp32}): {@code Q [64][ldq]} (pre-scaled), {@code K [tileK][ldq]},
 * {@code V [tileK][ldv]}, {@code P [64][ldp]}, all float; {@code ldq = D + 1} and
 * {@code ldp = tileK + 1} (the +1 spreads rows over the banks), {@code ldv = Dv}; buffers it does
 * not have are {@code −1}.
 *
 * <p>WMMA kernels ({@code starling_tf32}, {@code starling_bf16}, {@code starling_fp16}; element type
 * {@code T} of {@code ts} = 4 or 2 bytes, row padding {@code pad} = 4 or 8 elements): {@code D} and {@code Dv}
 * padded to multiples of 16 ({@code dPad}, {@code dvPad}); {@code Q [64][ldq]}, {@code K [tileK][ldq]},
 * {@code V [tileK][ldv]}, {@code P [64][ldp]} of {@code T} with {@code ldq = dPad + pad},
 * {@code ldv = dvPad + pad}, {@code ldp = tileK + pad}; float {@code S [64][lds]} with
 * {@code lds = tileK + 4}, float {@code O [64][ldo]} with {@code ldo = dvPad + 4}, a float
 * {@code 4 × 16 × 16} staging tile per warp, per-row float {@code M}, {@code L}, int {@code seen},
 * and int {@code badKey [64]}.
 *
 * <p>{@code mma.sync} kernels ({@link MmaSpecialisation}, {@link #forMma}): rows of
 * {@code rowBytes = headDim · ts + }{@link #MMA_ROW_PAD_BYTES} bytes ({@code ldq = ldv =
 * rowBytes / ts} elements; an odd number of 16-byte chunks, so {@code ldmatrix} is free of bank
 * conflicts); {@code Q [64][ldq]} at {@code q}, then {@code stages} K tiles of {@code blockN} rows
 * from {@code k}, then {@code stages} V tiles from {@code v}, one every {@code stageBytes}
 * ({@code blockN · rowBytes} rounded up to {@link #ALIGN}). Nothing else: S, P and O live in
 * registers.
 *
 * <p>Backward kernels (float32, {@link #forBackwardDq}, {@link #forBackwardDkdv}): rows padded by one
 * float ({@code ldq = D + 1}, {@code ldv = ldo = Dv + 1}); the fields name what each buffer holds there.
 *
 * <p>Every buffer starts on an {@link #ALIGN}-byte boundary (WMMA needs 32). Offsets and leading
 * dimensions are in bytes and elements respectively.
 *
 * @param dPad head dim as the kernel pads it
 * @param dvPad value dim as the kernel pads it
 * @param ldq leading dimension of the Q and K tiles, elements
 * @param ldv leading dimension of the V tile
 * @param ldp leading dimension of P, or −1
 * @param lds leading dimension of S, or −1
 * @param ldo leading dimension of O, or −1
 * @param q byte offset of the Q tile
 * @param k byte offset of the K tile
 * @param v byte offset of the V tile
 * @param s byte offset of S, or −1
 * @param p byte offset of P, or −1
 * @param o byte offset of O, or −1
 * @param tmp byte offset of the per-warp staging tiles, or −1
 * @param m byte offset of the running maxima, or −1
 * @param l byte offset of the running sums, or −1
 * @param seen byte offset of the row-read-a-key flags, or −1
 * @param badKey byte offset of the non-finite-value flags of the key tile, or −1
 * @param stages K/V stages ({@code cp.async} buffers) of the mma kernels; 1 for the others
 * @param stageBytes bytes from one K (or V) stage to the next, or −1 when there is one stage
 * @param bytes dynamic shared memory to launch with
 */
public record SharedLayout(int dPad, int dvPad, int ldq, int ldv, int ldp, int lds, int ldo, int q, int k, int v,
                           int s, int p, int o, int tmp, int m, int l, int seen, int badKey, int stages, int stageBytes,
                           int bytes) {
    /** Alignment of every buffer and slack added to the total ({@code SMEM_ALIGN} in the .cu). */
    public static final int ALIGN = 128;
    /** Padding of each shared row of the mma kernels, bytes ({@code MMA_ROW_PAD_BYTES} in the .cu). */
    public static final int MMA_ROW_PAD_BYTES = 16;

    /**
     * The carve-up of {@code starling_fp32} (FP32) or a WMMA kernel (TF32, BF16, FP16).
     *
     * @param precision selects the kernel
     * @param d head dim {@code D}, {@code 1..128}
     * @param dv value dim {@code Dv}, {@code 1..128}
     * @param tileK keys per tile, a multiple of 16 up to {@link LaunchGeometry#MAX_TILE_K}
     * @return the layout
     * @throws IllegalArgumentException if a dimension is out of range
     */
    public static SharedLayout of(Precision precision, int d, int dv, int tileK) {
        if (d < 1 || d > LaunchGeometry.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("d must be in [1, " + LaunchGeometry.MAX_HEAD_DIM + "], got " + d);
        }
        if (dv < 1 || dv > LaunchGeometry.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("dv must be in [1, " + LaunchGeometry.MAX_HEAD_DIM + "], got " + dv);
        }
        if (tileK < 16 || tileK > LaunchGeometry.MAX_TILE_K || tileK % 16 != 0) {
            throw new IllegalArgumentException("tileK must be a multiple of 16 in [16, " + LaunchGeometry.MAX_TILE_K
                    + "], got " + tileK);
        }
        int tq = LaunchGeometry.TILE_Q;
        Carver c = new Carver();
        if (precision == Precision.FP32) {
            int ldq = d + 1;
            int ldv = dv;
            int ldp = tileK + 1;
            int q = c.take(4 * tq * ldq);
            int k = c.take(4 * tileK * ldq);
            int v = c.take(4 * tileK * ldv);
            int p = c.take(4 * tq * ldp);
            return new SharedLayout(d, dv, ldq, ldv, ldp, -1, -1, q, k, v, -1, p, -1, -1, -1, -1, -1, -1, 1, -1,
                    c.total());
        }
        boolean sixteenBit = precision == Precision.BF16 || precision == Precision.FP16;
        int ts = sixteenBit ? 2 : 4;
        int pad = sixteenBit ? 8 : 4;
        int dPad = roundUp(d, 16);
        int dvPad = roundUp(dv, 16);
        int ldq = dPad + pad;
        int ldv = dvPad + pad;
        int ldp = tileK + pad;
        int lds = tileK + 4;
        int ldo = dvPad + 4;
        int q = c.take(ts * tq * ldq);
        int k = c.take(ts * tileK * ldq);
        int v = c.take(ts * tileK * ldv);
        int s = c.take(4 * tq * lds);
        int p = c.take(ts * tq * ldp);
        int o = c.take(4 * tq * ldo);
        int tmp = c.take(4 * (LaunchGeometry.MMA_THREADS / 32) * 16 * 16);
        int m = c.take(4 * tq);
        int l = c.take(4 * tq);
        int seen = c.take(4 * tq);
        int badKey = c.take(4 * LaunchGeometry.MAX_TILE_K);
        return new SharedLayout(dPad, dvPad, ldq, ldv, ldp, lds, ldo, q, k, v, s, p, o, tmp, m, l, seen, badKey, 1, -1,
                c.total());
    }

    /**
     * The carve-up of an {@code mma.sync} kernel ({@code MmaShape} in the .cu computes the same
     * offsets; {@code static_assert}s there bound its total).
     *
     * @param spec the specialisation
     * @param stages K/V stages, {@link MmaSpecialisation#MIN_STAGES} to {@link MmaSpecialisation#MAX_STAGES}
     * @return the layout
     * @throws IllegalArgumentException if {@code stages} is out of range
     */
    public static SharedLayout forMma(MmaSpecialisation spec, int stages) {
        if (stages < MmaSpecialisation.MIN_STAGES || stages > MmaSpecialisation.MAX_STAGES) {
            throw new IllegalArgumentException("stages must be in [" + MmaSpecialisation.MIN_STAGES + ", "
                    + MmaSpecialisation.MAX_STAGES + "], got " + stages);
        }
        int ts = spec.elementBytes();
        int rowBytes = spec.headDim() * ts + MMA_ROW_PAD_BYTES;
        int ld = rowBytes / ts;
        int stageBytes = roundUp(spec.blockN() * rowBytes, ALIGN);
        Carver c = new Carver();
        int q = c.take(MmaSpecialisation.BLOCK_M * rowBytes);
        int k = c.take(stages * stageBytes);
        int v = c.take(stages * stageBytes);
        return new SharedLayout(spec.headDim(), spec.headDim(), ld, ld, -1, -1, -1, q, k, v, -1, -1, -1, -1, -1, -1, -1,
                -1, stages, stageBytes, c.total());
    }

    /**
     * The carve-up of {@code starling_bwd_dq}: {@code Q [64][ldq]} (pre-scaled) at {@code q},
     * {@code K [tileK][ldq]} at {@code k}, {@code V [tileK][ldv]} at {@code v}, {@code dO [64][ldo]}
     * at {@code o} and {@code dS [64][lds]} at {@code s}, all float, with {@code ldq = D + 1},
     * {@code ldv = ldo = Dv + 1}, {@code lds = tileK + 1}.
     *
     * @param d head dim {@code D}, {@code 1..128}
     * @param dv value dim {@code Dv}, {@code 1..128}
     * @param tileK keys per key tile, a multiple of 16 up to {@link LaunchGeometry#MAX_TILE_K}
     * @return the layout
     * @throws IllegalArgumentException if a dimension is out of range
     */
    public static SharedLayout forBackwardDq(int d, int dv, int tileK) {
        checkDims(d, dv);
        checkTile("tileK", tileK);
        int tq = LaunchGeometry.TILE_Q;
        int ldq = d + 1;
        int ldv = dv + 1;
        int lds = tileK + 1;
        Carver c = new Carver();
        int q = c.take(4 * tq * ldq);
        int k = c.take(4 * tileK * ldq);
        int v = c.take(4 * tileK * ldv);
        int o = c.take(4 * tq * ldv);
        int s = c.take(4 * tq * lds);
        return new SharedLayout(d, dv, ldq, ldv, -1, lds, ldv, q, k, v, s, -1, o, -1, -1, -1, -1, -1, 1, -1, c.total());
    }

    /**
     * The carve-up of {@code starling_bwd_dkdv}, for one 64-key tile and chunks of {@code rows}
     * query rows: {@code K [64][ldq]} at {@code k}, {@code V [64][ldv]} at {@code v},
     * {@code Q [rows][ldq]} (pre-scaled) at {@code q}, {@code dO [rows][ldo]} at {@code o},
     * {@code P [rows][ldp]} at {@code p}, {@code dS [rows][lds]} at {@code s}, and per row the LSE
     * (float, at {@code m}), {@code D} (float, at {@code l}) and the keys of the tile the row reads
     * (int, at {@code seen}); {@code ldq = D + 1}, {@code ldv = ldo = Dv + 1}, {@code ldp = lds = 65}.
     *
     * @param d head dim {@code D}, {@code 1..128}
     * @param dv value dim {@code Dv}, {@code 1..128}
     * @param rows query rows per chunk, a multiple of 16 up to {@link LaunchGeometry#TILE_Q}
     * @return the layout
     * @throws IllegalArgumentException if a dimension is out of range
     */
    public static SharedLayout forBackwardDkdv(int d, int dv, int rows) {
        checkDims(d, dv);
        checkTile("rows", rows);
        int tk = LaunchGeometry.MAX_TILE_K;
        int ldq = d + 1;
        int ldv = dv + 1;
        int ldp = tk + 1;
        Carver c = new Carver();
        int k = c.take(4 * tk * ldq);
        int v = c.take(4 * tk * ldv);
        int q = c.take(4 * rows * ldq);
        int o = c.take(4 * rows * ldv);
        int p = c.take(4 * rows * ldp);
        int s = c.take(4 * rows * ldp);
        int m = c.take(4 * rows);
        int l = c.take(4 * rows);
        int count = c.take(4 * rows);
        return new SharedLayout(d, dv, ldq, ldv, ldp, ldp, ldv, q, k, v, s, p, o, -1, m, l, count, -1, 1, -1, c.total());
    }

    private static void checkDims(int d, int dv) {
        if (d < 1 || d > LaunchGeometry.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("d must be in [1, " + LaunchGeometry.MAX_HEAD_DIM + "], got " + d);
        }
        if (dv < 1 || dv > LaunchGeometry.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("dv must be in [1, " + LaunchGeometry.MAX_HEAD_DIM + "], got " + dv);
        }
    }

    private static void checkTile(String name, int n) {
        if (n < 16 || n > LaunchGeometry.MAX_TILE_K || n % 16 != 0) {
            throw new IllegalArgumentException(name + " must be a multiple of 16 in [16, " + LaunchGeometry.MAX_TILE_K
                    + "], got " + n);
        }
    }

    /** Hands out {@link #ALIGN}-aligned byte ranges one after the other. */
    private static final class Carver {
        private int end;

        int take(int bytes) {
            int at = end;
            end = roundUp(at + bytes, ALIGN);
            return at;
        }

        int total() {
            return ALIGN + end;
        }
    }

    static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }
}
