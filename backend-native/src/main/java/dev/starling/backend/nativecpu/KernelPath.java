package dev.starling.backend.nativecpu;

import dev.starling.api.Precision;

/**
 * The native kernels' paths: one tile algorithm ({@code attention_kernel.h}) on one of three tile
 * layers (AMX hardware, AVX-512 emulation, plain C emulation) and two element types. Each precision
 * takes the highest path its instruction-set level allows ({@link #best}).
 */
public enum KernelPath {
    /** float32 tiles in plain C, any x86-64 CPU. */
    PORTABLE_FP32(0, "portable-fp32", Precision.FP32, Isa.PORTABLE),
    /** float32 tiles compiled for AVX2 and FMA. */
    AVX2_FP32(1, "avx2-fp32", Precision.FP32, Isa.AVX2),
    /** float32 tiles in AVX-512F fused multiply-add. */
    AVX512_FP32(2, "avx512-fp32", Precision.FP32, Isa.AVX512),
    /** bf16 tiles emulated in plain C (the AMX algorithm and data layout), any x86-64 CPU. */
    PORTABLE_BF16(3, "portable-bf16", Precision.BF16, Isa.PORTABLE),
    /** bf16 tiles emulated with {@code vdpbf16ps} (AVX512-BF16). */
    AVX512_BF16(4, "avx512-bf16", Precision.BF16, Isa.AVX512_BF16),
    /** bf16 tiles on AMX ({@code tileloadd}, {@code tdpbf16ps}, {@code tilestored}). */
    AMX_BF16(5, "amx-bf16", Precision.BF16, Isa.AMX);

    private final int code;
    private final String text;
    private final Precision precision;
    private final Isa isa;

    KernelPath(int code, String text, Precision precision, Isa isa) {
        this.code = code;
        this.text = text;
        this.precision = precision;
        this.isa = isa;
    }

    /** @return the number the native library knows this path by */
    int code() {
        return code;
    }

    /** @return the name printed by {@code availability()}, e.g. {@code amx-bf16} */
    public String text() {
        return text;
    }

    /** @return the precision this path computes */
    public Precision precision() {
        return precision;
    }

    /** @return the instruction-set level it needs */
    public Isa isa() {
        return isa;
    }

    /**
     * The highest path for {@code precision} at level {@code level}.
     *
     * @param precision {@link Precision#FP32} or {@link Precision#BF16}
     * @param level the highest level allowed (the CPU's, or lower when forced)
     * @return the path, or {@code null} for a precision without paths
     */
    public static KernelPath best(Precision precision, Isa level) {
        KernelPath best = null;
        for (KernelPath p : values()) {
            if (p.precision == precision && p.isa.compareTo(level) <= 0) {
                best = p;
            }
        }
        return best;
    }
}
