package dev.starling.backend.cuda;

import java.util.Locale;

/**
 * Which attention kernels the cuda backend runs, from {@code -Dstarling.cuda.kernels=mma|wmma}.
 *
 * <p>{@link #WMMA}, the default, is the family verified on a GPU: {@code starling_fp32} on CUDA
 * cores and {@code starling_tf32}/{@code starling_bf16} with WMMA. {@link #MMA} runs the
 * FlashAttention-2-style kernels ({@code mma.sync}, {@code ldmatrix}, {@code cp.async} stages,
 * softmax in registers; {@link MmaSpecialisation}) for the shapes they are specialised for and
 * the WMMA kernels for every other shape, and declares {@link dev.starling.api.Precision#FP16}.
 * {@code MMA} stays opt-in until a GPU run has verified it (issue 16).
 */
public enum KernelFamily {
    /** Today's kernels: fp32 on CUDA cores, tf32/bf16 with WMMA. */
    WMMA,
    /** {@code mma.sync} kernels for D = Dv = 64 or 128 (WMMA for other shapes), and fp16. */
    MMA;

    /** The system property. */
    public static final String PROPERTY = "starling.cuda.kernels";
    /** The family when the property is not set. */
    public static final KernelFamily DEFAULT = WMMA;

    /**
     * Parses a value of {@link #PROPERTY}: {@code mma} or {@code wmma}, any case, blanks around ignored.
     *
     * @param value the property's value, or {@code null} when it is not set
     * @return the family; {@link #DEFAULT} for {@code null}
     * @throws IllegalArgumentException naming the property, the accepted values and the value given
     */
    public static KernelFamily parse(String value) {
        if (value == null) {
            return DEFAULT;
        }
        return switch (value.strip().toLowerCase(Locale.ROOT)) {
            case "mma" -> MMA;
            case "wmma" -> WMMA;
            default -> throw new IllegalArgumentException("-D" + PROPERTY + " must be mma or wmma (or unset, for "
                    + DEFAULT.text() + "), got \"" + value + "\"");
        };
    }

    /** @return the property value that selects this family */
    public String text() {
        return name().toLowerCase(Locale.ROOT);
    }
}
