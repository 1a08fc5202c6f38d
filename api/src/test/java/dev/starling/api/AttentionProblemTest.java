package dev.starling.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AttentionProblemTest {

    @Test
    void defaultsFollowTheDesign() {
        AttentionProblem p = AttentionProblem.builder().heads(8).length(100).headDim(64).build();
        assertEquals(8, p.kvHeads());
        assertEquals(100, p.keyLength());
        assertEquals(64, p.valueDim());
        assertEquals(0.125f, p.scale());
        assertEquals(Precision.FP32, p.precision());
        AttentionProblem gqa = AttentionProblem.builder().heads(8).kvHeads(2).length(10).headDim(4).build();
        assertEquals(0, gqa.kvHeadOf(3));
        assertEquals(1, gqa.kvHeadOf(4));
    }

    @Test
    void invalidProblemsNameTheField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AttentionProblem.builder().heads(6).kvHeads(4).length(10).headDim(4).build());
        assertTrue(e.getMessage().contains("queryHeads (6) must be a multiple of kvHeads (4)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> AttentionProblem.builder().batch(2).heads(1).length(10).headDim(4).keyLengths(3).build());
        assertTrue(e.getMessage().contains("keyLengths has 1 entries but batch is 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> AttentionProblem.builder().heads(1).length(10).headDim(4).queryLengths(11).build());
        assertTrue(e.getMessage().contains("queryLengths[0] = 11"), e.getMessage());
    }

    @Test
    void tensorChecksNameTheTensorAndBothShapes() {
        AttentionProblem p = AttentionProblem.builder().heads(8).length(4096).headDim(32).build();
        Tensor q = Tensor.zeros(TensorLayout.BHSD, 1, 8, 4096, 32);
        Tensor k = Tensor.zeros(TensorLayout.BHSD, 1, 8, 4096, 64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> p.checkInputs(q, k, q, q.copy(), null));
        assertEquals("k is [1, 8, 4096, 64] (BHSD) but the problem expects [1, 8, 4096, 32] (BHSD) (head dim 32)",
                e.getMessage());
        Tensor vBshd = Tensor.zeros(TensorLayout.BSHD, 1, 8, 4000, 32);
        e = assertThrows(IllegalArgumentException.class, () -> p.checkInputs(q, q.copy(), vBshd, q.copy(), null));
        assertTrue(e.getMessage().startsWith("v is [1, 4000, 8, 32] (BSHD)"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.checkInputs(q, q.copy(), q.copy(), q, null));
    }

    @Test
    void layoutsIndexBothOrders() {
        Tensor a = Tensor.zeros(TensorLayout.BHSD, 2, 3, 4, 5);
        for (int i = 0; i < a.data().length; i++) {
            a.data()[i] = i;
        }
        Tensor b = a.toLayout(TensorLayout.BSHD);
        assertEquals(a.get(1, 2, 3, 4), b.get(1, 2, 3, 4));
        assertEquals(a.get(0, 1, 2, 3), b.get(0, 1, 2, 3));
        assertEquals(15, b.rowStride());
        assertEquals(a, b.toLayout(TensorLayout.BHSD));
    }
}
