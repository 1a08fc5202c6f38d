package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BigBirdPattern;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.CaseGenerator;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.Tolerance;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The reference backend against the float64 dense oracle, feature by feature. */
class ReferenceAgreementTest {
    private static final long SEED = 20261128L;

    static Stream<AttentionCase> cases() {
        return CaseGenerator.standard(SEED).stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void agreesWithDenseOracleWithinFp32Tolerance(AttentionCase c) {
        Tensor out = c.newOutput();
        Arrays.fill(out.data(), Float.NaN); // poison: every element must be written
        float[] lse = c.newLse();
        Arrays.fill(lse, Float.NaN);
        float[] qBefore = c.q().data().clone();
        float[] kBefore = c.k().data().clone();
        float[] vBefore = c.v().data().clone();
        try (AttentionPlan plan = ReferenceBackend.withThreads(2).plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
        }
        Comparison.Outcome outcome = Comparison.compare(c.problem(), c.expected(), out, lse, Tolerance.FP32);
        assertTrue(outcome.ok(), () -> c + ": " + outcome.message());
        assertArrayEquals(qBefore, c.q().data(), "q was modified");
        assertArrayEquals(kBefore, c.k().data(), "k was modified");
        assertArrayEquals(vBefore, c.v().data(), "v was modified");
    }

    @Test
    void repeatedAndConcurrentCallsAreBitIdentical() throws Exception {
        AttentionCase c = CaseGenerator.standard(SEED).stream().filter(x -> x.name().startsWith("gqa")).findFirst()
                .orElseThrow();
        try (AttentionPlan plan = ReferenceBackend.withThreads(3).plan(c.problem(), c.layout())) {
            Tensor first = c.newOutput();
            plan.forward(c.q(), c.k(), c.v(), first);
            ExecutorService callers = Executors.newFixedThreadPool(4);
            try {
                List<Future<Tensor>> results = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    results.add(callers.submit(() -> {
                        Tensor out = c.newOutput();
                        for (int rep = 0; rep < 5; rep++) {
                            plan.forward(c.q(), c.k(), c.v(), out);
                        }
                        return out;
                    }));
                }
                for (Future<Tensor> f : results) {
                    assertArrayEquals(first.data(), f.get().data());
                }
            } finally {
                callers.shutdownNow();
            }
        }
    }

    @Test
    void bothLayoutsGiveTheSameNumbers() {
        AttentionCase c = CaseGenerator.standard(SEED).get(4);
        Tensor outBhsd = c.newOutput();
        Tensor outBshd = Tensor.zeros(TensorLayout.BSHD, c.problem().batch(), c.problem().queryHeads(),
                c.problem().queryLength(), c.problem().valueDim());
        try (AttentionPlan plan = ReferenceBackend.withThreads(1).plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), outBhsd);
            plan.forward(c.q().toLayout(TensorLayout.BSHD), c.k().toLayout(TensorLayout.BSHD),
                    c.v().toLayout(TensorLayout.BSHD), outBshd);
        }
        assertArrayEquals(outBhsd.data(), outBshd.toLayout(TensorLayout.BHSD).data());
    }

    @Test
    void closedPlanRefusesForward() {
        AttentionCase c = CaseGenerator.standard(SEED).get(0);
        AttentionPlan plan = ReferenceBackend.withThreads(1).plan(c.problem(), c.layout());
        plan.close();
        plan.close();
        assertThrows(IllegalStateException.class, () -> plan.forward(c.q(), c.k(), c.v(), c.newOutput()));
    }

    @Test
    void badShapesAreRefusedBeforeAnythingIsWritten() {
        AttentionCase c = CaseGenerator.standard(SEED).get(0);
        Tensor out = c.newOutput();
        Arrays.fill(out.data(), 42f);
        try (AttentionPlan plan = ReferenceBackend.withThreads(1).plan(c.problem(), c.layout())) {
            Tensor shortK = Tensor.zeros(TensorLayout.BHSD, 1, 2, 99, 16);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> plan.forward(c.q(), shortK, c.v(), out));
            assertTrue(e.getMessage().contains("k is [1, 2, 99, 16]"), e.getMessage());
            assertTrue(e.getMessage().contains("[1, 2, 100, 16]"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> plan.forward(c.q(), c.k(), c.v(), out, new float[3]));
            assertThrows(IllegalArgumentException.class, () -> plan.forward(null, c.k(), c.v(), out));
        }
        for (float f : out.data()) {
            assertEquals(42f, f);
        }
        BlockLayout other = Patterns.parse("bigbird(block=16)").layout(64, 64, 2);
        assertThrows(IllegalArgumentException.class, () -> ReferenceBackend.withThreads(1).plan(c.problem(), other));
    }

    @Test
    void unsupportedPrecisionIsRefusedByName() {
        AttentionProblem p = AttentionProblem.builder().heads(1).length(16).headDim(8)
                .precision(dev.starling.api.Precision.BF16).build();
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> new ReferenceBackend().plan(p, Patterns.parse("dense(block=16)").layout(16, 16, 1)));
        assertTrue(e.getMessage().contains("BF16"), e.getMessage());
    }

    /**
     * Linear memory: BigBird over 65,536 tokens (batch 1, 8 heads, head dim 64) in the 1 GB heap
     * surefire gives every test JVM. q, k, v and out alone take 512 MB, so any {@code Nq × Nk}
     * buffer (16 GB) or per-head dense scores would fail here.
     */
    @Test
    void bigBirdOver65536TokensRunsInOneGigabyteHeap() {
        assertTrue(Runtime.getRuntime().maxMemory() <= 1100L * 1024 * 1024,
                "this test must run with -Xmx1g, got " + Runtime.getRuntime().maxMemory());
        int n = 65_536;
        AttentionProblem p = AttentionProblem.builder().heads(8).length(n).headDim(64).build();
        BlockLayout layout = BigBirdPattern.defaults().layout(n, n, 8);
        Tensor q = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        Tensor k = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        Tensor v = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        for (int i = 0; i < v.data().length; i += 64) {
            v.data()[i] = 1f;
            q.data()[i] = (i % 7) * 0.1f;
            k.data()[i] = (i % 5) * 0.1f;
        }
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        try (AttentionPlan plan = new ReferenceBackend().plan(p, layout)) {
            plan.forward(q, k, v, out);
        }
        // Feature 0 of every value is 1, so every output row's feature 0 is 1.
        for (int i = 0; i < out.data().length; i += 64 * 997) {
            assertEquals(1f, out.data()[i], 1e-5f);
        }
    }
}
