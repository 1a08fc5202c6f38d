package dev.starling.api.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.EnumSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The base plan checks before compute runs, and close waits for running calls. */
class BasePlanTest {
    private static final AttentionProblem PROBLEM = AttentionProblem.builder().heads(1).length(8).headDim(2).build();
    private static final BlockLayout LAYOUT = Patterns.parse("dense(block=4)").layout(8, 8, 1);

    /** A backend whose compute counts calls and can be held inside. */
    private static final class Probe implements SparseAttention {
        final AtomicInteger computed = new AtomicInteger();
        final AtomicInteger released = new AtomicInteger();
        volatile CountDownLatch inside = new CountDownLatch(0);
        volatile CountDownLatch hold = new CountDownLatch(0);

        @Override public String name() { return "probe"; }
        @Override public int priority() { return 0; }
        @Override public Availability availability() { return Availability.available("test"); }
        @Override public Capabilities capabilities() { return Capabilities.full("test", EnumSet.of(Precision.FP32)); }

        @Override
        public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
            return new BasePlan(this, problem, layout) {
                @Override
                protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
                    inside.countDown();
                    try {
                        hold.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    computed.incrementAndGet();
                }

                @Override
                protected void release() {
                    released.incrementAndGet();
                }
            };
        }
    }

    private static Tensor tensor() {
        return Tensor.zeros(TensorLayout.BHSD, 1, 1, 8, 2);
    }

    @Test
    void refusesAliasedOutputsAndBadShapesBeforeComputing() {
        Probe probe = new Probe();
        try (AttentionPlan plan = probe.plan(PROBLEM, LAYOUT)) {
            Tensor q = tensor();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> plan.forward(q, tensor(), tensor(), q));
            assertTrue(e.getMessage().contains("out must not share"), e.getMessage());
            Tensor shortK = Tensor.zeros(TensorLayout.BHSD, 1, 1, 4, 2);
            e = assertThrows(IllegalArgumentException.class, () -> plan.forward(q, shortK, tensor(), tensor()));
            assertTrue(e.getMessage().startsWith("k is [1, 1, 4, 2]"), e.getMessage());
            assertEquals(0, probe.computed.get(), "compute never ran");
        }
    }

    @Test
    void lseSharingAnInputArrayIsRefused() {
        Probe probe = new Probe();
        AttentionProblem one = AttentionProblem.builder().heads(1).length(8).headDim(1).build();
        try (AttentionPlan plan = probe.plan(one, LAYOUT)) {
            Tensor q = Tensor.bhsd(new float[8], 1, 1, 8, 1);
            Tensor out = Tensor.bhsd(new float[8], 1, 1, 8, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> plan.forward(q, q, q, out, q.data()));
            assertTrue(e.getMessage().contains("lse must not share"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> plan.forward(q, q, q, out, out.data()));
            assertTrue(e.getMessage().contains("lse must not share"), e.getMessage());
            assertEquals(0, probe.computed.get());
        }
    }

    @Test
    void closeWaitsForRunningCallsAndLaterCallsFail() throws Exception {
        Probe probe = new Probe();
        probe.inside = new CountDownLatch(2);
        probe.hold = new CountDownLatch(1);
        AttentionPlan plan = probe.plan(PROBLEM, LAYOUT);
        Thread[] callers = new Thread[2];
        for (int t = 0; t < 2; t++) {
            callers[t] = new Thread(() -> plan.forward(tensor(), tensor(), tensor(), tensor()));
            callers[t].start();
        }
        assertTrue(probe.inside.await(10, TimeUnit.SECONDS));
        Thread closer = new Thread(plan::close);
        closer.start();
        closer.join(200);
        assertTrue(closer.isAlive(), "close waits while calls run");
        assertEquals(0, probe.released.get());
        probe.hold.countDown();
        closer.join(10_000);
        for (Thread t : callers) {
            t.join(10_000);
        }
        assertEquals(2, probe.computed.get(), "running calls finished normally");
        assertEquals(1, probe.released.get());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> plan.forward(tensor(), tensor(), tensor(), tensor()));
        assertTrue(e.getMessage().contains("closed probe plan"), e.getMessage());
        plan.close();
        assertEquals(1, probe.released.get(), "close is idempotent");
    }
}
