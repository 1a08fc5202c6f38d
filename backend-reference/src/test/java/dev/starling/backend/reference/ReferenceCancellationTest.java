package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Issue 27, item 5: an interrupted call stops its workers before it returns; close() waits for them. */
class ReferenceCancellationTest {

    @Test
    void noWorkerWritesTheOutputAfterAnInterruptedCallReturns() throws Exception {
        int n = 8192;
        AttentionProblem p = AttentionProblem.builder().heads(4).length(n).headDim(32).build();
        BlockLayout layout = Patterns.parse("dense(block=64)").layout(n, n, 4);
        Tensor x = Tensor.zeros(TensorLayout.BHSD, 1, 4, n, 32);
        Arrays.fill(x.data(), 0.25f);
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 4, n, 32);
        AttentionPlan plan = ReferenceBackend.withThreads(2).plan(p, layout);
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        AtomicReference<float[]> atReturn = new AtomicReference<>();
        CountDownLatch started = new CountDownLatch(1);
        Thread caller = new Thread(() -> {
            started.countDown();
            try {
                plan.forward(x, x, x, out, null);
            } catch (RuntimeException e) {
                thrown.set(e);
            }
            // What the buffer holds the moment the call returned.
            atReturn.set(out.data().clone());
        });
        caller.start();
        started.await();
        // Dense attention over 8,192 tokens takes seconds on the reference backend: interrupt it mid-call.
        Thread.sleep(300);
        caller.interrupt();
        caller.join();
        assertNotNull(thrown.get(), "the call was interrupted mid-flight and says so");
        assertTrue(thrown.get().getMessage().contains("interrupted"), thrown.get().getMessage());
        float[] later = out.data().clone();
        plan.close();
        assertArrayEquals(atReturn.get(), later, "no worker wrote after the call returned");
        assertArrayEquals(later, out.data(), "nor before close() returned");
        assertFalse(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.isAlive()
                && t.getName().startsWith("starling-reference-") && t.getState() == Thread.State.RUNNABLE),
                "close() waited for the workers");
    }
}
