package dev.starling.backend.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.ElementType;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.BasePlan;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** {@link Nd4jTensors}: views of an INDArray's own memory, read and written in place by an nd4j plan. */
class Nd4jTensorsTest {

    @Test
    void aViewReadsEveryElementWhereNd4jKeepsIt() {
        Nd4j.getRandom().setSeed(7);
        INDArray bhsd = Nd4j.rand(DataType.FLOAT, 2, 3, 5, 4);
        assertSameValues(bhsd, Nd4jTensors.view(bhsd, TensorLayout.BHSD), TensorLayout.BHSD);
        INDArray bshd = Nd4j.rand(DataType.FLOAT, 2, 5, 3, 4);
        Tensor t = Nd4jTensors.view(bshd, TensorLayout.BSHD);
        assertEquals(TensorLayout.BSHD, t.layout());
        assertSameValues(bshd, t, TensorLayout.BSHD);
        // A sub-array view (offset into the parent's memory) and a permuted one (other strides).
        INDArray middle = bhsd.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3), NDArrayIndex.all(), NDArrayIndex.all());
        assertSameValues(middle, Nd4jTensors.view(middle, TensorLayout.BHSD), TensorLayout.BHSD);
        INDArray permuted = bshd.permute(0, 2, 1, 3);
        assertSameValues(permuted, Nd4jTensors.view(permuted, TensorLayout.BHSD), TensorLayout.BHSD);
        INDArray half = bhsd.castTo(DataType.FLOAT16);
        Tensor h = Nd4jTensors.view(half, TensorLayout.BHSD);
        assertEquals(ElementType.FP16, h.type());
        assertSameValues(half, h, TensorLayout.BHSD);
    }

    @Test
    void writingTheViewWritesTheArray() {
        INDArray a = Nd4j.zeros(DataType.FLOAT, 1, 2, 3, 4);
        Tensor t = Nd4jTensors.view(a, TensorLayout.BHSD);
        t.write(t.index(0, 1, 2, 3), 5.5f);
        assertEquals(5.5f, a.getFloat(0, 1, 2, 3));
    }

    @Test
    void refusesWhatItCannotView() {
        IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                () -> Nd4jTensors.view(Nd4j.zeros(DataType.FLOAT, 2, 3), TensorLayout.BHSD));
        assertTrue(rank.getMessage().contains("rank 4") && rank.getMessage().contains("[2, 3]"), rank.getMessage());
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> Nd4jTensors.view(Nd4j.zeros(DataType.DOUBLE, 1, 1, 1, 1), TensorLayout.BHSD));
        assertTrue(type.getMessage().contains("DOUBLE"), type.getMessage());
    }

    /**
     * The "no copy" check: q, k, v as views of one fused [B, N, 3, H, D] INDArray and out
     * as a BSHD INDArray go into an nd4j plan; the plan converts nothing (0 bytes copied) and the
     * answer, written into the INDArray, has the bits of the same plan on packed heap copies.
     */
    @Test
    void fusedIndArrayGoesInAndOutWithoutACopy() {
        int b = 2;
        int n = 256;
        int heads = 2;
        int d = 32;
        Nd4j.getRandom().setSeed(11);
        INDArray fused = Nd4j.rand(DataType.FLOAT, b, n, 3, heads, d).subi(0.5);
        INDArray q = fused.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all(),
                NDArrayIndex.all());
        INDArray k = fused.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(1), NDArrayIndex.all(),
                NDArrayIndex.all());
        INDArray v = fused.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(2), NDArrayIndex.all(),
                NDArrayIndex.all());
        INDArray out = Nd4j.zeros(DataType.FLOAT, b, n, heads, d);
        AttentionProblem p = AttentionProblem.builder().batch(b).heads(heads).length(n).headDim(d).build();
        BlockLayout layout = Patterns.parse("bigbird(block=32, window=3, global=1, random=2)").layout(n, n, heads);
        Nd4jBackend backend = new Nd4jBackend();
        try (BasePlan plan = (BasePlan) backend.plan(p, layout)) {
            Tensor qt = Nd4jTensors.view(q, TensorLayout.BSHD);
            Tensor kt = Nd4jTensors.view(k, TensorLayout.BSHD);
            Tensor vt = Nd4jTensors.view(v, TensorLayout.BSHD);
            assertTrue(!qt.onHeap() && !qt.isPacked(), qt.describe());
            plan.forward(qt, kt, vt, Nd4jTensors.view(out, TensorLayout.BSHD), null);
            assertEquals(0, plan.convertedBytes(), "the plan copied an input or the output");
            Tensor expected = Tensor.zeros(TensorLayout.BSHD, b, heads, n, d);
            plan.forward(qt.toFloat32(), kt.toFloat32(), vt.toFloat32(), expected, null);
            assertEquals(expected, Nd4jTensors.view(out, TensorLayout.BSHD).toFloat32());
        }
    }

    private static void assertSameValues(INDArray a, Tensor t, TensorLayout order) {
        long[] s = a.shape();
        for (int i0 = 0; i0 < s[0]; i0++) {
            for (int i1 = 0; i1 < s[1]; i1++) {
                for (int i2 = 0; i2 < s[2]; i2++) {
                    for (int i3 = 0; i3 < s[3]; i3++) {
                        float got = order == TensorLayout.BHSD ? t.get(i0, i1, i2, i3) : t.get(i0, i2, i1, i3);
                        assertEquals(a.getFloat(i0, i1, i2, i3), got, "at " + i0 + "," + i1 + "," + i2 + "," + i3);
                    }
                }
            }
        }
    }
}
