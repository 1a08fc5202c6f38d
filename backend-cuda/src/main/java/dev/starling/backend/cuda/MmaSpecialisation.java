package dev.starling.backend.cuda;

import dev.starling.api.Precision;
import java.util.List;
import java.util.Optional;

/**
 * One compiled {@code mma.sync} kernel of {@code sparse_attention.cu}: the template arguments of
 * its {@code STARLING_MMA_KERNEL(...)} line, which a test reads to keep the two lists equal.
 *
 * <p>A CTA has {@link #BLOCK_M} / 16 warps and computes a {@link LaunchGeometry#TILE_Q}-row tile
 * of a query block; K and V arrive in tiles of {@code blockN} keys through {@code cp.async} into
 * 2 or 3 shared stages ({@link #chooseStages}). The kernels take {@code D == Dv == headDim} only;
 * other shapes run the WMMA kernels.
 *
 * @param symbol the kernel's symbol
 * @param precision its arithmetic (TF32 reads float32 inputs; BF16 and FP16 read 16-bit inputs)
 * @param headDim {@code kHeadDim}: {@code D} and {@code Dv}
 * @param blockN {@code kBlockN}: keys per K/V tile
 * @param minBlocksPerSm the CTAs per SM its {@code __launch_bounds__} keeps registers for
 */
public record MmaSpecialisation(String symbol, Precision precision, int headDim, int blockN, int minBlocksPerSm) {
    /** Query rows per CTA ({@code MMA_BLOCK_M} in the .cu). */
    public static final int BLOCK_M = 64;
    /** Threads per CTA: a warp per 16 query rows. */
    public static final int THREADS = BLOCK_M / 16 * 32;
    /** Fewest {@code cp.async} stages of K/V tiles. */
    public static final int MIN_STAGES = 2;
    /** Most stages ({@code MMA_MAX_STAGES} in the .cu). */
    public static final int MAX_STAGES = 3;
    /** Shared memory the driver reserves per CTA on sm_80 and newer, bytes. */
    static final int RESERVED_SHARED_PER_CTA = 1024;
    /** System property forcing the number of stages (2 or 3); unset: {@link #chooseStages} decides. */
    public static final String STAGES_PROPERTY = "starling.cuda.mmaStages";

    /** Every compiled specialisation, in the order of the .cu. */
    public static final List<MmaSpecialisation> ALL = List.of(
            new MmaSpecialisation("starling_mma_bf16_d64", Precision.BF16, 64, 64, 3),
            new MmaSpecialisation("starling_mma_bf16_d128", Precision.BF16, 128, 64, 2),
            new MmaSpecialisation("starling_mma_fp16_d64", Precision.FP16, 64, 64, 3),
            new MmaSpecialisation("starling_mma_fp16_d128", Precision.FP16, 128, 64, 2),
            new MmaSpecialisation("starling_mma_tf32_d64", Precision.TF32, 64, 64, 2),
            new MmaSpecialisation("starling_mma_tf32_d128", Precision.TF32, 128, 32, 2));

    /**
     * The specialisation for a precision and head dims, if one was compiled.
     *
     * @param precision the problem's precision
     * @param d head dim {@code D}
     * @param dv value dim {@code Dv}
     * @return the specialisation with {@code headDim == d == dv}, or empty (FP32, other dims, {@code D != Dv})
     */
    public static Optional<MmaSpecialisation> find(Precision precision, int d, int dv) {
        if (d != dv) {
            return Optional.empty();
        }
        return ALL.stream().filter(s -> s.precision == precision && s.headDim == d).findFirst();
    }

    /** @return bytes of one element of the inputs the kernel reads (4 for tf32, 2 for bf16 and fp16) */
    public int elementBytes() {
        return precision == Precision.TF32 ? 4 : 2;
    }

    /** @return whether the kernel reads 16-bit inputs (float32 inputs are converted first) */
    public boolean readsSixteenBit() {
        return elementBytes() == 2;
    }

    /** @return the kernel that converts float32 inputs to what this kernel reads, or {@code null} for tf32 */
    public String convertKernel() {
        return switch (precision) {
            case BF16 -> "starling_convert_bf16";
            case FP16 -> "starling_convert_fp16";
            default -> null;
        };
    }

    /**
     * The shared-memory carve-up with {@code stages} K/V stages.
     *
     * @param stages {@link #MIN_STAGES} to {@link #MAX_STAGES}
     * @return the layout
     */
    public SharedLayout shared(int stages) {
        return SharedLayout.forMma(this, stages);
    }

    /**
     * Chooses the number of K/V stages: among those whose shared memory fits a CTA, the one that
     * lets the most CTAs share an SM (shared memory per SM, capped by the CTAs the registers
     * allow, {@link #minBlocksPerSm}); on a tie, more stages (deeper prefetch).
     *
     * @param maxSharedPerBlock the device's opt-in shared memory per CTA
     * @param sharedPerSm the device's shared memory per SM
     * @param forced a stage count from {@link #STAGES_PROPERTY}, or 0 to choose
     * @return the stages, or 0 when no stage count fits (the WMMA kernels run instead)
     */
    public int chooseStages(int maxSharedPerBlock, int sharedPerSm, int forced) {
        if (forced != 0) {
            return shared(forced).bytes() <= maxSharedPerBlock ? forced : 0;
        }
        int best = 0;
        int bestCtas = 0;
        for (int stages = MAX_STAGES; stages >= MIN_STAGES; stages--) {
            int bytes = shared(stages).bytes();
            if (bytes > maxSharedPerBlock) {
                continue;
            }
            int ctas = Math.min(minBlocksPerSm, Math.max(1, sharedPerSm / (bytes + RESERVED_SHARED_PER_CTA)));
            if (ctas > bestCtas) {
                best = stages;
                bestCtas = ctas;
            }
        }
        return best;
    }

    /**
     * Parses a value of {@link #STAGES_PROPERTY}.
     *
     * @param value the value, or {@code null}
     * @return 2 or 3, or 0 for {@code null}
     * @throws IllegalArgumentException naming the property and the value unless it is 2 or 3
     */
    public static int parseStages(String value) {
        if (value == null) {
            return 0;
        }
        String v = value.strip();
        if (v.equals("2") || v.equals("3")) {
            return Integer.parseInt(v);
        }
        throw new IllegalArgumentException("-D" + STAGES_PROPERTY + " must be " + MIN_STAGES + " or " + MAX_STAGES
                + " (or unset, to choose by the device's shared memory), got \"" + value + "\"");
    }
}
