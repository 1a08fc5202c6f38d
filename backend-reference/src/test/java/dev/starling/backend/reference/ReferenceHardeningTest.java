package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Close during forward, bad configuration, forgotten plans and huge blocks (issue 12). */
class ReferenceHardeningTest {

    @Test
    void closeDuringForwardLetsRunningCallsFinish() throws Exception {
        int n = 8192;
        AttentionProblem p = AttentionProblem.builder().heads(4).length(n).headDim(32).build();
        BlockLayout layout = Patterns.parse("bigbird(block=64)").layout(n, n, 4);
        Tensor x = Tensor.zeros(TensorLayout.BHSD, 1, 4, n, 32);
        Arrays.fill(x.data(), 0.25f);
        AttentionPlan plan = ReferenceBackend.withThreads(2).plan(p, layout);
        List<Thread> callers = new ArrayList<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Tensor> outs = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
            Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 4, n, 32);
            outs.add(out);
            Thread caller = new Thread(() -> {
                try {
                    plan.forward(x, x, x, out);
                } catch (IllegalStateException e) {
                    // started after close: allowed, with a clear message
                    assertTrue(e.getMessage().contains("closed"), e.getMessage());
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            callers.add(caller);
            caller.start();
        }
        Thread.sleep(50);
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            plan.close();
            for (Thread t : callers) {
                t.join();
            }
        });
        assertEquals(null, failure.get());
        assertThrows(IllegalStateException.class, () -> plan.forward(x, x, x, outs.get(0)));
    }

    @Test
    void aBadThreadCountIsReportedNotIgnored() {
        String old = System.getProperty(ReferenceBackend.THREADS_PROPERTY);
        System.setProperty(ReferenceBackend.THREADS_PROPERTY, "abc");
        try {
            ReferenceBackend backend = new ReferenceBackend();
            assertFalse(backend.availability().isAvailable());
            assertTrue(backend.availability().reason().contains("starling.reference.threads=abc"),
                    backend.availability().reason());
            AttentionProblem p = AttentionProblem.builder().heads(1).length(8).headDim(2).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> backend.plan(p, Patterns.parse("dense(block=4)").layout(8, 8, 1)));
            assertTrue(e.getMessage().contains("starling.reference.threads=abc")
                    && e.getMessage().contains("must be a whole number >= 1"), e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(ReferenceBackend.THREADS_PROPERTY);
            } else {
                System.setProperty(ReferenceBackend.THREADS_PROPERTY, old);
            }
        }
    }

    @Test
    void plansDroppedWithoutCloseLeaveNoThreads() throws Exception {
        AttentionProblem p = AttentionProblem.builder().heads(1).length(64).headDim(4).build();
        BlockLayout layout = Patterns.parse("dense(block=16)").layout(64, 64, 1);
        Tensor x = Tensor.zeros(TensorLayout.BHSD, 1, 1, 64, 4);
        for (int i = 0; i < 50; i++) {
            AttentionPlan forgotten = ReferenceBackend.withThreads(2).plan(p, layout);
            forgotten.forward(x, x, x, Tensor.zeros(TensorLayout.BHSD, 1, 1, 64, 4));
        }
        long deadline = System.nanoTime() + 20_000_000_000L;
        long alive;
        do {
            Thread.sleep(200);
            alive = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith("starling-reference-")).count();
        } while (alive > 0 && System.nanoTime() < deadline);
        assertEquals(0, alive, "idle workers of forgotten plans end");
    }

    @Test
    void hugeBlocksStillWriteEveryRow() {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(100).headDim(8).build();
        AttentionCase c = AttentionCase.random("huge block", 3, p, Patterns.parse("dense(block=2147483647)"),
                TensorLayout.BHSD, AttentionCase.Values.NORMAL);
        BlockLayout layout = c.layout();
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 2, 100, 8);
        Arrays.fill(out.data(), Float.NaN);
        try (AttentionPlan plan = new ReferenceBackend().plan(p, layout)) {
            plan.forward(c.q(), c.k(), c.v(), out);
        }
        Comparison.Outcome o = Comparison.compare(p, DenseOracle.compute(p, layout, c.q(), c.k(), c.v()), out, null,
                Tolerance.FP32);
        assertTrue(o.ok(), o.message());
    }
}
