package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.PlanOptions;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Per-plan options: two differently configured plans of one backend side by side, nothing global. */
class VectorPlanOptionsTest {
    private final AttentionProblem problem = AttentionProblem.builder().batch(1).heads(4).length(512).headDim(32).build();
    private final BlockLayout layout = Patterns.parse("bigbird(block=64, window=3, global=1, random=1, seed=3)")
            .layout(512, 512, 4);

    @Test
    void twoPlansWithDifferentThreadsLiveSideBySide() {
        VectorBackend backend = new VectorBackend();
        Tensor q = random(1), k = random(2), v = random(3);
        Tensor o1 = Tensor.zeros(TensorLayout.BHSD, 1, 4, 512, 32);
        Tensor o3 = Tensor.zeros(TensorLayout.BHSD, 1, 4, 512, 32);
        try (VectorPlan one = (VectorPlan) backend.plan(problem, layout, PlanOptions.none().with(VectorBackend.THREADS, 1));
             VectorPlan three = (VectorPlan) backend.plan(problem, layout, PlanOptions.of(backend, "threads=3"))) {
            assertEquals(1, one.threads());
            assertEquals(3, three.threads());
            three.forward(q, k, v, o3);
            one.forward(q, k, v, o1);
            three.forward(q, k, v, o3);
        }
        // No row is split at these sizes, so the thread count does not change a single bit.
        assertArrayEquals(o1.data(), o3.data());
    }

    @Test
    void thePropertyIsOnlyADefault() {
        String old = System.getProperty(VectorBackend.THREADS_PROPERTY);
        System.setProperty(VectorBackend.THREADS_PROPERTY, "2");
        try {
            VectorBackend backend = new VectorBackend();
            try (VectorPlan byProperty = (VectorPlan) backend.plan(problem, layout);
                 VectorPlan byOption = (VectorPlan) backend.plan(problem, layout, PlanOptions.of(backend, "threads=1"))) {
                assertEquals(2, byProperty.threads());
                assertEquals(1, byOption.threads());
            }
            System.setProperty(VectorBackend.THREADS_PROPERTY, "two");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.plan(problem, layout));
            assertTrue(e.getMessage().contains("-Dstarling.vector.threads=two"), e.getMessage());
            assertTrue(backend.availability().reason().contains("starling.vector.threads"), backend.availability().toString());
        } finally {
            if (old == null) {
                System.clearProperty(VectorBackend.THREADS_PROPERTY);
            } else {
                System.setProperty(VectorBackend.THREADS_PROPERTY, old);
            }
        }
    }

    @Test
    void unknownOrBadOptionsAreRefusedBeforeAnyWork() {
        VectorBackend backend = new VectorBackend();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PlanOptions.of(backend, "kernels=mma"));
        assertEquals("vector backend has no option 'kernels'; it takes threads", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PlanOptions.of(backend, "threads=0"));
        assertTrue(e.getMessage().contains("option threads") && e.getMessage().contains("got '0'")
                || e.getMessage().contains("got 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> backend.plan(problem, layout, PlanOptions.of(new dev.starling.backend.vector.VectorBackend(), "threads=1")
                        .with(dev.starling.api.Option.flag("experimental", null, "x"), true)));
        assertTrue(e.getMessage().contains("no option 'experimental'"), e.getMessage());
    }

    private static Tensor random(long seed) {
        Random r = new Random(seed);
        float[] a = new float[4 * 512 * 32];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return Tensor.of(TensorLayout.BHSD, a, 1, 4, 512, 32);
    }
}
