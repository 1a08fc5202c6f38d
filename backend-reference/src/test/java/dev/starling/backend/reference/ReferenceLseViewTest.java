package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.ElementType;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The LSE as a tensor view: {@code forwardWithLse} and {@code backwardWithLse} (issue 23). */
class ReferenceLseViewTest {
    private static final AttentionProblem P = AttentionProblem.builder().batch(2).heads(3).length(40).headDim(8).build();
    private static final BlockLayout LAYOUT = Patterns.parse("bigbird(block=8, window=3, global=1, random=1)")
            .layout(40, 40, 3);

    private static Tensor random(long seed) {
        Tensor t = Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8);
        Random r = new Random(seed);
        for (int i = 0; i < t.data().length; i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }

    @Test
    void everyViewGetsTheBitsOfTheArrayForm() {
        Tensor q = random(1);
        Tensor k = random(2);
        Tensor v = random(3);
        try (AttentionPlan plan = new ReferenceBackend().plan(P, LAYOUT)) {
            float[] expected = new float[P.lseSize()];
            plan.forward(q, k, v, Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8), expected);

            float[] packed = new float[P.lseSize()];
            plan.forwardWithLse(q, k, v, Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8),
                    Tensor.of(TensorLayout.BHSD, packed, 2, 3, 40, 1));
            assertArrayEquals(expected, packed, "a packed BHSD view is written in place");

            float[] bsh = new float[P.lseSize() + 4];
            Arrays.fill(bsh, -7f);
            Tensor view = Tensor.strided(bsh, 2, new long[] {40 * 3, 1, 3, 1}, 2, 3, 40, 1);
            plan.forwardWithLse(q, k, v, Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8), view);
            for (int b = 0, r = 0; b < 2; b++) {
                for (int h = 0; h < 3; h++) {
                    for (int i = 0; i < 40; i++, r++) {
                        assertEquals(expected[r], bsh[2 + (b * 40 + i) * 3 + h], "[B, N, H] element " + r);
                    }
                }
            }
            assertEquals(-7f, bsh[0]);
            assertEquals(-7f, bsh[bsh.length - 1]);

            ByteBuffer direct = ByteBuffer.allocateDirect(P.lseSize() * 4).order(ByteOrder.BIG_ENDIAN);
            Tensor off = Tensor.of(TensorLayout.BHSD, ElementType.FP32, direct, 0, 2, 3, 40, 1);
            plan.forwardWithLse(q, k, v, Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8), off);
            for (int r = 0; r < expected.length; r++) {
                assertEquals(expected[r], direct.getFloat(r * 4), "direct element " + r);
            }
            assertSame(packed, P.lseArray(Tensor.of(TensorLayout.BHSD, packed, 2, 3, 40, 1), true), "no copy for packed");
        }
    }

    @Test
    void backwardReadsTheViewAsTheArray() {
        Tensor q = random(4);
        Tensor k = random(5);
        Tensor v = random(6);
        Tensor dOut = random(7);
        try (AttentionPlan plan = new ReferenceBackend().plan(P, LAYOUT)) {
            Tensor out = Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8);
            float[] lse = new float[P.lseSize()];
            plan.forward(q, k, v, out, lse);
            Tensor[] a = {random(0), random(0), random(0)};
            plan.backward(q, k, v, out, lse, dOut, a[0], a[1], a[2]);
            float[] bsh = new float[P.lseSize()];
            Tensor view = Tensor.strided(bsh, 0, new long[] {40 * 3, 1, 3, 1}, 2, 3, 40, 1);
            view.copyFrom(Tensor.of(TensorLayout.BHSD, lse, 2, 3, 40, 1));
            Tensor[] g = {random(0), random(0), random(0)};
            plan.backwardWithLse(q, k, v, out, view, dOut, g[0], g[1], g[2]);
            for (int t = 0; t < 3; t++) {
                assertArrayEquals(a[t].data(), g[t].data(), "gradient " + t);
            }
        }
    }

    @Test
    void aBadViewIsRefusedBeforeAnythingIsWritten() {
        Tensor q = random(1);
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 2, 3, 40, 8);
        Arrays.fill(out.data(), 5f);
        try (AttentionPlan plan = new ReferenceBackend().plan(P, LAYOUT)) {
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class, () -> plan.forwardWithLse(q, q, q,
                    out, Tensor.of(TensorLayout.BHSD, new float[2 * 3 * 41], 2, 3, 41, 1)));
            assertTrue(shape.getMessage().contains("lse has shape [2, 3, 41, 1]")
                    && shape.getMessage().contains("[2, 3, 40, 1]"), shape.getMessage());
            IllegalArgumentException type = assertThrows(IllegalArgumentException.class, () -> plan.forwardWithLse(q, q, q,
                    out, Tensor.of(TensorLayout.BHSD, ElementType.BF16, new short[P.lseSize()], 2, 3, 40, 1)));
            assertTrue(type.getMessage().contains("must be float32"), type.getMessage());
            Tensor inOut = Tensor.strided(out.data(), 0, new long[] {3 * 40 * 8, 40 * 8, 8, 1}, 2, 3, 40, 1);
            IllegalArgumentException alias = assertThrows(IllegalArgumentException.class,
                    () -> plan.forwardWithLse(q, q, q, out, inOut));
            assertTrue(alias.getMessage().contains("lse must not share its storage with out"), alias.getMessage());
            Tensor inQ = Tensor.strided(q.data(), 0, new long[] {3 * 40 * 8, 40 * 8, 8, 1}, 2, 3, 40, 1);
            assertThrows(IllegalArgumentException.class, () -> plan.forwardWithLse(q, q, q, out, inQ));
        }
        for (float x : out.data()) {
            assertEquals(5f, x, "out was written before the refusal");
        }
    }
}
