package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.ElementType;
import dev.starling.api.npy.NpyArray;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code starling run --layout}, 16-bit inputs, plan options, and the one line per input on stderr. */
class RunLayoutTest {
    private static final int B = 2, H = 3, N = 40, D = 8;

    private static float[] randn(long seed, int n) {
        Random r = new Random(seed);
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            d[i] = (float) r.nextGaussian();
        }
        return d;
    }

    /** [B, H, N, D] -> [B, N, H, D] */
    private static float[] toBshd(float[] a) {
        float[] t = new float[a.length];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                for (int n = 0; n < N; n++) {
                    System.arraycopy(a, ((b * H + h) * N + n) * D, t, ((b * N + n) * H + h) * D, D);
                }
            }
        }
        return t;
    }

    private static StarlingCliTest.Result run(Path dir, String q, String k, String v, String out, String... extra) {
        String[] base = {"run", "--q", dir.resolve(q).toString(), "--k", dir.resolve(k).toString(), "--v",
            dir.resolve(v).toString(), "--pattern", "bigbird(block=8, window=3, global=1, random=1, seed=2)", "--out",
            dir.resolve(out).toString(), "--backend", "reference"};
        String[] all = Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return StarlingCliTest.run(all);
    }

    @Test
    void bshdFilesGiveTheTransposedBhsdAnswer(@TempDir Path dir) throws Exception {
        float[][] qkv = {randn(1, B * H * N * D), randn(2, B * H * N * D), randn(3, B * H * N * D)};
        String[] names = {"q", "k", "v"};
        for (int i = 0; i < 3; i++) {
            NpyArray.ofFloats(qkv[i], B, H, N, D).write(dir.resolve(names[i] + ".npy"));
            NpyArray.ofFloats(toBshd(qkv[i]), B, N, H, D).write(dir.resolve(names[i] + "_bshd.npy"));
        }
        StarlingCliTest.Result bhsd = run(dir, "q.npy", "k.npy", "v.npy", "o.npy");
        assertEquals(0, bhsd.code(), bhsd.err());
        StarlingCliTest.Result bshd = run(dir, "q_bshd.npy", "k_bshd.npy", "v_bshd.npy", "o_bshd.npy", "--layout", "BSHD");
        assertEquals(0, bshd.code(), bshd.err());
        String first = bshd.err().lines().findFirst().orElse("");
        assertTrue(first.startsWith("starling: q: ") && first.contains("[2, 40, 3, 8] read as bshd [B, N, H, D]: B=2, H=3, "
                + "N=40, D=8, float32"), first);
        NpyArray o = NpyArray.read(dir.resolve("o_bshd.npy"));
        assertArrayEquals(new int[] {B, N, H, D}, o.shape());
        assertArrayEquals(toBshd(NpyArray.read(dir.resolve("o.npy")).toFloats()), o.toFloats(),
                "the same numbers, in the file's layout");
    }

    @Test
    void sixteenBitInputsAreWidenedExactly(@TempDir Path dir) throws Exception {
        for (ElementType type : new ElementType[] {ElementType.FP16, ElementType.BF16}) {
            String[] names = {"q", "k", "v"};
            for (int i = 0; i < 3; i++) {
                float[] a = randn(10 + i, B * H * N * D);
                short[] bits = new short[a.length];
                float[] widened = new float[a.length];
                for (int e = 0; e < a.length; e++) {
                    bits[e] = type.round(a[e]);
                    widened[e] = type.widen(bits[e]);
                }
                NpyArray.ofShorts(type, bits, B, H, N, D).write(dir.resolve(names[i] + "16.npy"));
                NpyArray.ofFloats(widened, B, H, N, D).write(dir.resolve(names[i] + "32.npy"));
            }
            StarlingCliTest.Result half = run(dir, "q16.npy", "k16.npy", "v16.npy", "o16.npy");
            assertEquals(0, half.code(), half.err());
            assertTrue(half.err().lines().findFirst().orElse("").contains(type == ElementType.FP16 ? "float16"
                    : "bfloat16 (uint16 bits)"), half.err());
            assertEquals(3, half.err().lines().filter(l -> l.startsWith("starling: ") && l.contains(" read as ")).count(),
                    half.err());
            StarlingCliTest.Result full = run(dir, "q32.npy", "k32.npy", "v32.npy", "o32.npy");
            assertEquals(0, full.code(), full.err());
            assertArrayEquals(NpyArray.read(dir.resolve("o32.npy")).toFloats(), NpyArray.read(dir.resolve("o16.npy")).toFloats(),
                    type + ": a float32 backend on widened values gives the same bits");
        }
    }

    @Test
    void aHeadsLongerThanLengthFileGetsAHintAndOptionsAreChecked(@TempDir Path dir) throws Exception {
        float[] a = randn(5, 1 * 64 * 4 * 8);
        for (String n : new String[] {"q", "k", "v"}) {
            NpyArray.ofFloats(a, 1, 64, 4, 8).write(dir.resolve(n + ".npy"));
        }
        StarlingCliTest.Result r = run(dir, "q.npy", "k.npy", "v.npy", "o.npy", "--option", "threads=1");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("if the file is [B, N, H, D], pass --layout bshd"), r.err());
        StarlingCliTest.Result bad = run(dir, "q.npy", "k.npy", "v.npy", "o2.npy", "--option", "kernels=mma");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("reference backend has no option 'kernels'; it takes threads"), bad.err());
        StarlingCliTest.Result layout = run(dir, "q.npy", "k.npy", "v.npy", "o3.npy", "--layout", "bsdh");
        assertEquals(2, layout.code());
        assertTrue(layout.err().contains("--layout must be bhsd or bshd, got 'bsdh'"), layout.err());
    }
}
