package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.GradientOracle;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The reference backward pass against the float64 gradient oracle, on every feature at once and one by one. */
class ReferenceBackwardTest {
    /** fp32 gradient tolerance used here: atol, rtol (see docs/design.md section 6). */
    private static final double ATOL = 1e-4;
    private static final double RTOL = 5e-4;

    private static void check(String name, AttentionProblem p, String pattern, TensorLayout layout, long seed) {
        AttentionCase c = AttentionCase.random(name, seed, p, Patterns.parse(pattern), layout, AttentionCase.Values.NORMAL);
        Random random = new Random(seed + 1);
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        Tensor g = Tensor.zeros(layout, p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
        for (int i = 0; i < g.data().length; i++) {
            g.data()[i] = (float) random.nextGaussian();
        }
        Tensor dq = Tensor.zeros(layout, p.batch(), p.queryHeads(), p.queryLength(), p.headDim());
        Tensor dk = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), p.keyLength(), p.headDim());
        Tensor dv = Tensor.zeros(layout, p.batch(), p.kvHeads(), p.keyLength(), p.valueDim());
        Arrays.fill(dq.data(), Float.NaN);
        Arrays.fill(dk.data(), Float.NaN);
        Arrays.fill(dv.data(), Float.NaN);
        float[][] before = {c.q().data().clone(), c.k().data().clone(), c.v().data().clone(), g.data().clone()};
        try (AttentionPlan plan = new ReferenceBackend().plan(p, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
            float[] outBefore = out.data().clone();
            plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq, dk, dv);
            assertArrayEquals(outBefore, out.data(), "out not modified");
            // Deterministic: a second call gives the same bits.
            Tensor dq2 = Tensor.zeros(layout, p.batch(), p.queryHeads(), p.queryLength(), p.headDim());
            Tensor dk2 = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), p.keyLength(), p.headDim());
            Tensor dv2 = Tensor.zeros(layout, p.batch(), p.kvHeads(), p.keyLength(), p.valueDim());
            plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq2, dk2, dv2);
            assertArrayEquals(dq.data(), dq2.data());
            assertArrayEquals(dk.data(), dk2.data());
            assertArrayEquals(dv.data(), dv2.data());
        }
        assertArrayEquals(before[0], c.q().data());
        assertArrayEquals(before[1], c.k().data());
        assertArrayEquals(before[2], c.v().data());
        assertArrayEquals(before[3], g.data());
        GradientOracle.Result want = GradientOracle.compute(p, c.layout(), c.q(), c.k(), c.v(), g);
        compare(name + " dq", want.dq(), dq);
        compare(name + " dk", want.dk(), dk);
        compare(name + " dv", want.dv(), dv);
    }

    private static void compare(String name, double[] want, Tensor got) {
        int at = 0;
        double worst = 0;
        for (int b = 0; b < got.batch(); b++) {
            for (int h = 0; h < got.heads(); h++) {
                for (int n = 0; n < got.length(); n++) {
                    for (int d = 0; d < got.dim(); d++, at++) {
                        double diff = Math.abs(got.get(b, h, n, d) - want[at]);
                        worst = Math.max(worst, diff / (ATOL + RTOL * Math.abs(want[at])));
                        assertTrue(diff <= ATOL + RTOL * Math.abs(want[at]), name + " at (b=" + b + ", h=" + h + ", n=" + n
                                + ", d=" + d + "): " + got.get(b, h, n, d) + " vs " + want[at]);
                    }
                }
            }
        }
        System.out.printf("%-40s worst error / tolerance %.3f%n", name, worst);
    }

    @Test
    void everyFeature() {
        AttentionProblem.Builder base = AttentionProblem.builder().heads(4).length(200).headDim(16);
        check("plain bigbird", base.build(), "bigbird(block=16, window=3, global=2, random=2)", TensorLayout.BHSD, 1);
        check("tails, Nq != Nk, Dv != D, GQA, BSHD",
                AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(77).keyLength(101).headDim(12)
                        .valueDim(7).build(), "bigbird(block=16, window=3, global=1, random=2)", TensorLayout.BSHD, 2);
        check("causal, MQA, lengths", AttentionProblem.builder().batch(2).heads(3).kvHeads(1).queryLength(90).keyLength(120)
                .headDim(9).causal(true).keyLengths(120, 64).queryLengths(70, 90).build(),
                "bigbird(block=16, window=3, global=2, random=2)", TensorLayout.BHSD, 3);
        check("every pattern: strided", base.build(), "strided(block=16, stride=3)", TensorLayout.BSHD, 4);
        check("every pattern: longformer", base.build(), "longformer(block=16, window=3, global=[0, -1])",
                TensorLayout.BHSD, 5);
        check("every pattern: fixed", base.build(), "fixed(block=16, local=3, global=1)", TensorLayout.BHSD, 6);
        check("dense, scale", base.scale(0.3f).build(), "dense(block=32)", TensorLayout.BHSD, 7);
    }

    @Test
    void badInputIsRefusedBeforeAnyWrite() {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(32).headDim(4).build();
        BlockLayout layout = Patterns.parse("window(block=8)").layout(32, 32, 2);
        Tensor x = Tensor.zeros(TensorLayout.BHSD, 1, 2, 32, 4);
        Tensor dq = Tensor.zeros(TensorLayout.BHSD, 1, 2, 32, 4);
        Arrays.fill(dq.data(), 7f);
        try (AttentionPlan plan = new ReferenceBackend().plan(p, layout)) {
            float[] lse = new float[64];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> plan.backward(x, x, x, x, lse, x, dq, Tensor.zeros(TensorLayout.BHSD, 1, 2, 31, 4),
                            Tensor.zeros(TensorLayout.BHSD, 1, 2, 32, 4)));
            assertTrue(e.getMessage().startsWith("dk is [1, 2, 31, 4]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> plan.backward(x, x, x, x, lse, x, dq, dq,
                    Tensor.zeros(TensorLayout.BHSD, 1, 2, 32, 4)));
            assertTrue(e.getMessage().contains("dk must not share its array with dq"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> plan.backward(x, x, x, x, lse, x, x, dq,
                    Tensor.zeros(TensorLayout.BHSD, 1, 2, 32, 4)));
            assertTrue(e.getMessage().contains("dq must not share its array with q"), e.getMessage());
            for (float f : dq.data()) {
                assertEquals(7f, f);
            }
        }
    }

    /**
     * The gradients do not depend on the plan's thread count (conformance rule 31 cannot vary it: the SPI does not
     * expose threads): 1, 2, 3 and 8 workers give the same bits, GQA and global rows included.
     */
    @Test
    void theThreadCountDoesNotChangeABit() {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(150).keyLength(170)
                .headDim(12).valueDim(20).causal(true).keyLengths(170, 99).build();
        AttentionCase c = AttentionCase.random("threads", 9, p,
                Patterns.parse("bigbird(block=16, window=3, global=2, random=2)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        Tensor g = c.newOutput();
        Random random = new Random(10);
        for (int i = 0; i < g.data().length; i++) {
            g.data()[i] = (float) random.nextGaussian();
        }
        float[][] first = null;
        for (int threads : new int[] {1, 2, 3, 8}) {
            Tensor dq = Tensor.zeros(TensorLayout.BHSD, 2, 4, 150, 12);
            Tensor dk = Tensor.zeros(TensorLayout.BHSD, 2, 2, 170, 12);
            Tensor dv = Tensor.zeros(TensorLayout.BHSD, 2, 2, 170, 20);
            try (AttentionPlan plan = ReferenceBackend.withThreads(threads).plan(p, c.layout())) {
                if (first == null) {
                    plan.forward(c.q(), c.k(), c.v(), out, lse);
                }
                plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq, dk, dv);
            }
            float[][] now = {dq.data(), dk.data(), dv.data()};
            if (first == null) {
                first = now;
            } else {
                for (int t = 0; t < 3; t++) {
                    assertArrayEquals(first[t], now[t], threads + " threads, gradient " + t);
                }
            }
        }
    }
}
