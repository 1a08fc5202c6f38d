package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Precision;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * float32 to bf16/fp16 as the device converts: every 16-bit pattern round-trips, every float goes
 * to the nearest 16-bit value with ties to even, overflow and underflow land where IEEE says.
 */
class HalfPrecisionTest {
    private static final long SEED = 20261128L;

    @Test
    void everyFp16PatternRoundTrips() {
        for (int h = 0; h < 1 << 16; h++) {
            float f = HalfPrecision.fp16BitsToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(HalfPrecision.fp16BitsToFloat(HalfPrecision.toFp16Bits(f))), "NaN 0x"
                        + Integer.toHexString(h));
                continue;
            }
            assertEquals(h, HalfPrecision.toFp16Bits(f) & 0xFFFF, "fp16 0x" + Integer.toHexString(h) + " = " + f);
        }
    }

    @Test
    void everyBf16PatternRoundTrips() {
        for (int h = 0; h < 1 << 16; h++) {
            float f = HalfPrecision.bf16BitsToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(HalfPrecision.bf16BitsToFloat(HalfPrecision.toBf16Bits(f))));
                continue;
            }
            assertEquals(h, HalfPrecision.toBf16Bits(f) & 0xFFFF, "bf16 0x" + Integer.toHexString(h) + " = " + f);
        }
    }

    /** Random floats over the whole fp16 range (normal, subnormal, past the largest): the nearest value, ties to even. */
    @Test
    void fp16IsNearestTiesToEven() {
        Random rnd = new Random(SEED);
        for (int n = 0; n < 200_000; n++) {
            float f = Math.scalb((float) (rnd.nextDouble() * 2 - 1), rnd.nextInt(48) - 30);
            checkNearest(f, HalfPrecision.toFp16Bits(f), true);
        }
        // Exact ties: halfway between neighbours goes to the even one.
        for (int h = 0; h < 0x7BFF; h++) {
            double lo = HalfPrecision.fp16BitsToFloat((short) h);
            double hi = HalfPrecision.fp16BitsToFloat((short) (h + 1));
            float mid = (float) ((lo + hi) / 2);
            if (mid == (lo + hi) / 2) {
                assertEquals((h & 1) == 0 ? h : h + 1, HalfPrecision.toFp16Bits(mid) & 0xFFFF, "tie at " + mid);
            }
        }
    }

    @Test
    void bf16IsNearestTiesToEven() {
        Random rnd = new Random(SEED + 1);
        for (int n = 0; n < 200_000; n++) {
            float f = Float.intBitsToFloat(rnd.nextInt());
            if (Float.isNaN(f)) {
                continue;
            }
            checkNearest(f, HalfPrecision.toBf16Bits(f), false);
        }
    }

    private static void checkNearest(float f, short got, boolean fp16) {
        float value = fp16 ? HalfPrecision.fp16BitsToFloat(got) : HalfPrecision.bf16BitsToFloat(got);
        double err = Math.abs((double) value - f);
        for (int delta : new int[] {-1, 1}) {
            short other = (short) (got + delta);
            float o = fp16 ? HalfPrecision.fp16BitsToFloat(other) : HalfPrecision.bf16BitsToFloat(other);
            if (Float.isNaN(o) || Math.signum(o) * Math.signum(value) < 0) {
                continue;
            }
            double otherErr = Math.abs((double) o - f);
            if (Float.isInfinite(value)) {
                // Overflow: f is at least halfway past the largest finite value.
                float max = fp16 ? 65504f : Float.intBitsToFloat(0x7F7F0000);
                double ulp = fp16 ? 32 : Math.ulp(max) * 65536;
                assertTrue(Math.abs((double) f) >= max + ulp / 2, f + " overflowed");
                continue;
            }
            assertTrue(err <= otherErr, f + " -> " + value + " but " + o + " is nearer");
            if (err == otherErr) {
                assertEquals(0, got & 1, f + ": a tie goes to the even pattern");
            }
        }
    }

    @Test
    void fp16EdgesAreIeee() {
        assertEquals(0x7BFF, HalfPrecision.toFp16Bits(65504f) & 0xFFFF, "largest finite");
        assertEquals(0x7BFF, HalfPrecision.toFp16Bits(65519.99f) & 0xFFFF, "below the overflow threshold");
        assertEquals(0x7C00, HalfPrecision.toFp16Bits(65520f) & 0xFFFF, "halfway past the largest: infinity");
        assertEquals(0xFC00, HalfPrecision.toFp16Bits(-1e6f) & 0xFFFF);
        assertEquals(0x0001, HalfPrecision.toFp16Bits(0x1p-24f) & 0xFFFF, "smallest subnormal");
        assertEquals(0x0000, HalfPrecision.toFp16Bits(0x1p-25f) & 0xFFFF, "half of it ties to zero (even)");
        assertEquals(0x0001, HalfPrecision.toFp16Bits(Math.nextUp(0x1p-25f)) & 0xFFFF);
        assertEquals(0x8000, HalfPrecision.toFp16Bits(-0x1p-30f) & 0xFFFF, "signed zero");
        assertEquals(0x0400, HalfPrecision.toFp16Bits(0x1p-14f) & 0xFFFF, "smallest normal");
        assertEquals(0x3C00, HalfPrecision.toFp16Bits(1f) & 0xFFFF);
        assertEquals(0x3C00, HalfPrecision.toFp16Bits(1f + 0x1p-11f) & 0xFFFF, "tie to even");
        assertEquals(0x3C02, HalfPrecision.toFp16Bits(1f + 3 * 0x1p-11f) & 0xFFFF, "tie to even, upwards");
        assertEquals(0x7C00, HalfPrecision.toFp16Bits(Float.POSITIVE_INFINITY) & 0xFFFF);
        assertTrue(Float.isNaN(HalfPrecision.fp16BitsToFloat(HalfPrecision.toFp16Bits(Float.NaN))));
        for (int i = -8; i <= 8; i++) {
            assertEquals((float) i, HalfPrecision.fp16BitsToFloat(HalfPrecision.toFp16Bits(i)), "small integers are exact");
        }
    }

    @Test
    void bf16EdgesAreIeee() {
        assertEquals(0x3F80, HalfPrecision.toBf16Bits(1f) & 0xFFFF);
        assertEquals(0x3F80, HalfPrecision.toBf16Bits(Float.intBitsToFloat(0x3F808000)) & 0xFFFF, "tie to even");
        assertEquals(0x3F82, HalfPrecision.toBf16Bits(Float.intBitsToFloat(0x3F818000)) & 0xFFFF, "tie to even, upwards");
        assertEquals(0x7F80, HalfPrecision.toBf16Bits(Float.MAX_VALUE) & 0xFFFF, "rounds past the largest: infinity");
        assertEquals(0xFF80, HalfPrecision.toBf16Bits(Float.NEGATIVE_INFINITY) & 0xFFFF);
        assertTrue(Float.isNaN(HalfPrecision.bf16BitsToFloat(HalfPrecision.toBf16Bits(Float.NaN))));
        assertTrue(Float.isNaN(HalfPrecision.bf16BitsToFloat(HalfPrecision.toBf16Bits(Float.intBitsToFloat(0x7F800001)))),
                "a NaN whose payload sits in the low bits stays NaN");
    }

    @Test
    void encodeAndRoundWorkElementByElement() {
        float[] x = {0f, 1f, -2.5f, 1e-3f, 70000f};
        short[] h = HalfPrecision.encode(Precision.FP16, x);
        for (int i = 0; i < x.length; i++) {
            assertEquals(HalfPrecision.toFp16Bits(x[i]), h[i]);
        }
        assertArrayEquals(new float[] {0f, 1f, -2.5f, HalfPrecision.fp16BitsToFloat(HalfPrecision.toFp16Bits(1e-3f)),
            Float.POSITIVE_INFINITY}, HalfPrecision.round(Precision.FP16, x));
        assertEquals(HalfPrecision.toBf16Bits(-2.5f), HalfPrecision.encode(Precision.BF16, x)[2]);
        assertThrows(IllegalArgumentException.class, () -> HalfPrecision.encode(Precision.TF32, x));
    }
}
