package dev.starling.api;

/**
 * How one element of a {@link Tensor} is stored: IEEE float32, bfloat16 or IEEE float16.
 *
 * <p>The 16-bit types hold their bits in a {@code short} (heap {@code short[]}, or two bytes of a
 * {@code ByteBuffer} in the buffer's byte order). Reading widens exactly to float32; writing rounds
 * a float32 to the nearest representable value, ties to even (IEEE round-to-nearest-even), keeps
 * the sign of zero, maps overflow to ±infinity and keeps NaN a NaN. Widening and rounding are the
 * only conversions the api ever makes; they live here and nowhere else.
 */
public enum ElementType {
    /** IEEE 754 binary32: 1 sign, 8 exponent, 23 fraction bits; stored in a {@code float[]} or 4 buffer bytes. */
    FP32(4, "<f4"),
    /** bfloat16: the top 16 bits of a float32 (8 exponent, 7 fraction bits); {@code short[]} or 2 buffer bytes. */
    BF16(2, "<u2"),
    /** IEEE 754 binary16: 1 sign, 5 exponent, 10 fraction bits; {@code short[]} or 2 buffer bytes. */
    FP16(2, "<f2");

    private final int bytes;
    private final String npyDescr;

    ElementType(int bytes, String npyDescr) {
        this.bytes = bytes;
        this.npyDescr = npyDescr;
    }

    /** @return bytes per element: 4 for FP32, 2 for the 16-bit types */
    public int bytes() {
        return bytes;
    }

    /**
     * @return the {@code .npy} dtype string this type is written with: {@code <f4}, {@code <f2}, and
     *         {@code <u2} for bf16 (NumPy has no bf16; the file names the type in its header, see
     *         {@code dev.starling.api.npy})
     */
    public String npyDescr() {
        return npyDescr;
    }

    /** @return whether elements are 16-bit ({@code short}) */
    public boolean isHalf() {
        return bytes == 2;
    }

    /** @return the lower-case name, {@code fp32}, {@code bf16} or {@code fp16} */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /**
     * Widens a 16-bit element to float32, exactly.
     *
     * @param bits the element's 16 bits
     * @return its value
     * @throws IllegalStateException for {@link #FP32}, which has no 16-bit form
     */
    public float widen(short bits) {
        return switch (this) {
            case BF16 -> Float.intBitsToFloat((bits & 0xFFFF) << 16);
            case FP16 -> halfToFloat(bits);
            case FP32 -> throw new IllegalStateException("FP32 elements are not 16-bit");
        };
    }

    /**
     * Rounds a float32 to this 16-bit type, to nearest, ties to even.
     *
     * @param value the value
     * @return the element's 16 bits
     * @throws IllegalStateException for {@link #FP32}
     */
    public short round(float value) {
        return switch (this) {
            case BF16 -> floatToBf16(value);
            case FP16 -> floatToHalf(value);
            case FP32 -> throw new IllegalStateException("FP32 elements are not 16-bit");
        };
    }

    /**
     * Rounds a float32 to the nearest value this type can hold, as a float32 ({@code widen(round(x))};
     * {@code x} itself for FP32).
     *
     * @param value the value
     * @return the representable value nearest {@code value}
     */
    public float quantize(float value) {
        return this == FP32 ? value : widen(round(value));
    }

    /**
     * @param text {@code fp32}, {@code bf16} or {@code fp16}, any case; also {@code float32},
     *             {@code bfloat16} and {@code float16}
     * @return the type
     * @throws IllegalArgumentException naming the accepted spellings
     */
    public static ElementType parse(String text) {
        String t = text == null ? "" : text.trim().toLowerCase(java.util.Locale.ROOT);
        return switch (t) {
            case "fp32", "float32", "f32" -> FP32;
            case "bf16", "bfloat16" -> BF16;
            case "fp16", "float16", "half", "f16" -> FP16;
            default -> throw new IllegalArgumentException("unknown element type '" + text + "': use fp32, bf16 or fp16");
        };
    }

    private static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x0040);   // NaN stays NaN (quiet bit set so truncation cannot make it infinity)
        }
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    private static float halfToFloat(short half) {
        int h = half & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1F;
        int fraction = h & 0x3FF;
        if (exponent == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (fraction << 13));
        }
        if (exponent == 0) {
            // Zero or subnormal: fraction · 2^-24, exact in float32.
            float magnitude = fraction * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (fraction << 13));
    }

    private static short floatToHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int magnitude = bits & 0x7FFFFFFF;
        if (magnitude > 0x7F800000) {
            return (short) (sign | 0x7E00 | ((magnitude >>> 13) & 0x3FF));   // NaN, quiet
        }
        if (magnitude >= 0x477FF000) {
            return (short) (sign | 0x7C00);   // rounds to or beyond 65520: infinity
        }
        if (magnitude >= 0x38800000) {
            // Normal half: drop 13 fraction bits, round to nearest even; a carry into the exponent is correct.
            int rounded = magnitude + 0xFFF + ((magnitude >>> 13) & 1);
            return (short) (sign | ((rounded - (112 << 23)) >>> 13));
        }
        // Subnormal half or zero: value / 2^-24, rounded to nearest even, exactly (float32 holds it).
        float scaled = Float.intBitsToFloat(magnitude) * 0x1p24f;
        int whole = (int) scaled;
        float rest = scaled - whole;
        if (rest > 0.5f || (rest == 0.5f && (whole & 1) == 1)) {
            whole++;
        }
        return (short) (sign | whole);
    }
}
