package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Feature;
import dev.starling.api.PlanOptions;
import dev.starling.api.Precision;
import dev.starling.api.pattern.Patterns;
import org.junit.jupiter.api.Test;

/** The CUDA backend's plan options, on the host logic (no GPU needed): two configurations in one JVM. */
class CudaPlanOptionsTest {
    @Test
    void twoConfigurationsSideBySide() {
        CudaBackend backend = new CudaBackend();
        PlanOptions mma = PlanOptions.of(backend, "kernels=mma", "split-blocks=8", "mma-stages=3");
        PlanOptions wmma = PlanOptions.of(backend, "kernels=wmma", "backward=true");
        assertEquals(KernelFamily.MMA, backend.checkOptions(mma).get(CudaBackend.KERNELS));
        assertEquals(8, backend.checkOptions(mma).get(CudaBackend.SPLIT_BLOCKS));
        assertEquals(3, backend.checkOptions(mma).get(CudaBackend.MMA_STAGES));
        assertEquals(SplitRows.OFF, backend.checkOptions(wmma).get(CudaBackend.SPLIT_BLOCKS));
        assertTrue(backend.capabilities(backend.checkOptions(mma)).precisions().contains(Precision.FP16));
        assertFalse(backend.capabilities(backend.checkOptions(mma)).has(Feature.BACKWARD));
        assertFalse(backend.capabilities(backend.checkOptions(wmma)).precisions().contains(Precision.FP16));
        assertTrue(backend.capabilities(backend.checkOptions(wmma)).has(Feature.BACKWARD));
        // The backend's own capabilities are the defaults, untouched by either plan's options.
        assertFalse(backend.capabilities().has(Feature.BACKWARD));
    }

    @Test
    void badOptionsAreRefusedBeforeTheDevice() {
        CudaBackend backend = new CudaBackend();
        AttentionProblem p = AttentionProblem.builder().heads(1).length(16).headDim(8).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PlanOptions.of(backend, "kernels=fast"));
        assertTrue(e.getMessage().contains("option kernels") && e.getMessage().contains("fast"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PlanOptions.of(backend, "threads=2"));
        assertEquals("cuda backend has no option 'threads'; it takes kernels, split-blocks, mma-stages, backward, device",
                e.getMessage());
        PlanOptions foreign = PlanOptions.of(new dev.starling.backend.cuda.CudaBackend(), "device=0")
                .with(dev.starling.api.Option.flag("fast", null, "not cuda's"), true);
        e = assertThrows(IllegalArgumentException.class,
                () -> backend.plan(p, Patterns.parse("dense(block=16)").layout(16, 16, 1), foreign));
        assertTrue(e.getMessage().contains("no option 'fast'"), e.getMessage());
    }
}
