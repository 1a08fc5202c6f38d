package dev.starling.backend.nativecpu;

import java.util.Locale;

/**
 * Instruction-set levels of x86-64 CPUs that the native kernels have a path for, lowest first. A
 * level names the highest path a plan may use ({@link NativeBackend#ISA_PROPERTY}); the CPU's own
 * level (read by CPUID when the library loads) caps it.
 */
public enum Isa {
    /** Any x86-64 CPU: the tile kernels emulated in plain C. */
    PORTABLE("portable"),
    /** AVX2 and FMA (Haswell, Zen 1 and later): float32 tiles in 256-bit vectors. */
    AVX2("avx2"),
    /** AVX-512F (Skylake-SP, Zen 4 and later): float32 tiles in 512-bit FMA. */
    AVX512("avx512"),
    /** AVX512-BF16 (Cooper Lake, Sapphire Rapids, Zen 4 and later): bf16 tiles emulated with {@code vdpbf16ps}. */
    AVX512_BF16("avx512-bf16"),
    /** AMX-BF16 (Sapphire Rapids and later): bf16 tiles on the matrix engine ({@code tdpbf16ps}). */
    AMX("amx");

    private final String text;

    Isa(String text) {
        this.text = text;
    }

    /** @return the lowercase name used by {@link NativeBackend#ISA_PROPERTY}, e.g. {@code avx512-bf16} */
    public String text() {
        return text;
    }

    /**
     * Reads a level from its text form.
     *
     * @param text one of {@code portable, avx2, avx512, avx512-bf16, amx} (case and surrounding blanks ignored)
     * @return the level
     * @throws IllegalArgumentException naming the text and the accepted names
     */
    public static Isa parse(String text) {
        String t = text == null ? "" : text.strip().toLowerCase(Locale.ROOT);
        for (Isa isa : values()) {
            if (isa.text.equals(t)) {
                return isa;
            }
        }
        throw new IllegalArgumentException("instruction-set level '" + text + "' is not one of portable, avx2, avx512, "
                + "avx512-bf16, amx");
    }

    /** @return the lower of this level and {@code other} */
    Isa min(Isa other) {
        return compareTo(other) <= 0 ? this : other;
    }
}
