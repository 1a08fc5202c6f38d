package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import org.junit.jupiter.api.Test;

/** Issue 27, item 11: plans dropped without close() give their worker threads back; close() ends them. */
class VectorThreadsTest {

    private static long alive(String prefix) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().startsWith(prefix))
                .count();
    }

    @Test
    void plansDroppedWithoutCloseLeaveNoThreads() throws Exception {
        AttentionProblem p = AttentionProblem.builder().heads(4).length(256).headDim(8).build();
        BlockLayout layout = Patterns.parse("dense(block=16)").layout(256, 256, 4);
        Tensor x = Tensor.zeros(TensorLayout.BHSD, 1, 4, 256, 8);
        for (int i = 0; i < 20; i++) {
            AttentionPlan forgotten = VectorBackend.withThreads(3).plan(p, layout);
            forgotten.forward(x, x, x, Tensor.zeros(TensorLayout.BHSD, 1, 4, 256, 8));
        }
        long deadline = System.nanoTime() + 20_000_000_000L;
        long alive;
        do {
            Thread.sleep(200);
            alive = alive("starling-vector-");
        } while (alive > 0 && System.nanoTime() < deadline);
        assertEquals(0, alive, "idle workers of forgotten plans end");
    }

    @Test
    void closeEndsThePlansWorkers() {
        AttentionProblem p = AttentionProblem.builder().heads(4).length(256).headDim(8).build();
        BlockLayout layout = Patterns.parse("dense(block=16)").layout(256, 256, 4);
        Tensor x = Tensor.zeros(TensorLayout.BHSD, 1, 4, 256, 8);
        java.util.Set<Thread> before = Thread.getAllStackTraces().keySet();
        AttentionPlan plan = VectorBackend.withThreads(3).plan(p, layout);
        plan.forward(x, x, x, Tensor.zeros(TensorLayout.BHSD, 1, 4, 256, 8));
        // This plan's pool: threads named starling-vector-<pool>-<n> that were not there before it.
        String prefix = Thread.getAllStackTraces().keySet().stream().filter(t -> !before.contains(t)).map(Thread::getName)
                .filter(n -> n.startsWith("starling-vector-")).map(n -> n.substring(0, n.lastIndexOf('-') + 1))
                .findFirst().orElseThrow();
        plan.close();
        assertEquals(0, alive(prefix), "close() returned only once the plan's workers ended");
    }
}
