package dev.starling.backend.cuda;

import dev.starling.api.Precision;

/**
 * float32 to and from the 16-bit formats of {@link Precision#BF16} and {@link Precision#FP16}, as
 * the device converts ({@code __float2bfloat16_rn}, {@code __float2half_rn}: round to nearest,
 * ties to even; fp16 overflows to infinity and has subnormals). For callers that prepare 16-bit
 * tensors on the host for {@link CudaPlan#forward16}; the kernels' own conversion
 * ({@code starling_convert_*}) gives the same bits (checked on a GPU by {@code backend-cuda/gpu/check.sh}).
 */
public final class HalfPrecision {
    private HalfPrecision() {
    }

    /**
     * @param f a float. Not modified.
     * @return the IEEE binary16 bits nearest to {@code f} (ties to even); NaN gives a quiet NaN of the same sign
     */
    public static short toFp16Bits(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xFF;
        int mant = bits & 0x7F_FFFF;
        if (exp == 0xFF) {
            return (short) (sign | 0x7C00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
        }
        int e = exp - 127 + 15;
        if (e >= 0x1F) {
            return (short) (sign | 0x7C00);
        }
        if (e <= 0) {
            // Subnormal (or zero) in half: the value in units of 2^-24, rounded.
            int shift = 126 - exp;
            if (shift > 24) {
                return (short) sign;
            }
            int m = mant | 0x80_0000;
            return (short) (sign | roundShift(m, shift));
        }
        // Normal: 10 mantissa bits; a carry out of the mantissa moves into the exponent (and to infinity).
        int h = (e << 10) | (mant >>> 13);
        int rest = mant & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) {
            h++;
        }
        return (short) (sign | h);
    }

    /** {@code m / 2^shift} rounded to nearest, ties to even ({@code 1 <= shift <= 24}). */
    private static int roundShift(int m, int shift) {
        int q = m >>> shift;
        int rest = m & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        if (rest > half || (rest == half && (q & 1) != 0)) {
            q++;
        }
        return q;
    }

    /**
     * @param h binary16 bits
     * @return their value as a float (exact)
     */
    public static float fp16BitsToFloat(short h) {
        int bits = h & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1F;
        int mant = bits & 0x3FF;
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F80_0000 | (mant << 13));
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /**
     * @param f a float. Not modified.
     * @return the bfloat16 bits nearest to {@code f} (ties to even); NaN gives a quiet NaN of the same sign
     */
    public static short toBf16Bits(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }

    /**
     * @param h bfloat16 bits
     * @return their value as a float (exact)
     */
    public static float bf16BitsToFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    /**
     * Encodes values in a 16-bit precision, element by element.
     *
     * @param precision {@link Precision#BF16} or {@link Precision#FP16}
     * @param values the values. Not modified.
     * @return a new array of the 16-bit patterns
     * @throws IllegalArgumentException if the precision has no 16-bit format
     */
    public static short[] encode(Precision precision, float[] values) {
        short[] out = new short[values.length];
        switch (precision) {
            case BF16 -> {
                for (int i = 0; i < values.length; i++) {
                    out[i] = toBf16Bits(values[i]);
                }
            }
            case FP16 -> {
                for (int i = 0; i < values.length; i++) {
                    out[i] = toFp16Bits(values[i]);
                }
            }
            default -> throw new IllegalArgumentException(precision + " has no 16-bit format");
        }
        return out;
    }

    /**
     * Rounds values to a 16-bit precision and back: what the kernels compute with.
     *
     * @param precision {@link Precision#BF16} or {@link Precision#FP16}
     * @param values the values. Not modified.
     * @return a new array of the rounded values
     * @throws IllegalArgumentException if the precision has no 16-bit format
     */
    public static float[] round(Precision precision, float[] values) {
        short[] bits = encode(precision, values);
        float[] out = new float[values.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = precision == Precision.BF16 ? bf16BitsToFloat(bits[i]) : fp16BitsToFloat(bits[i]);
        }
        return out;
    }
}
