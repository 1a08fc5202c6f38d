package dev.starling.backend.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.WorkPlan;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.Test;

class Nd4jBackendTest {

    @Test
    void availableWithVendorAndCore() {
        Nd4jBackend backend = new Nd4jBackend();
        assertTrue(backend.availability().isAvailable(), backend.availability().toString());
        assertTrue(backend.availability().reason().contains("BLAS OPENBLAS"), backend.availability().reason());
        assertTrue(backend.capabilities().device().startsWith("ND4J CpuBackend"), backend.capabilities().device());
    }

    @Test
    void openBlasAdviceNamesTheFixOnlyWhenTheCoreIsBehind() {
        String avx512 = "fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl";
        String advice = OpenBlasCore.advice("Prescott", avx512, null);
        assertTrue(advice.contains("OPENBLAS_CORETYPE=SkylakeX") && advice.contains("Prescott")
                && advice.contains("OPENBLAS_CORETYPE is not set"), advice);
        String withSetting = OpenBlasCore.advice("Zen", avx512, "Haswell");
        assertTrue(withSetting.contains("OPENBLAS_CORETYPE=Haswell is set") && withSetting.contains("SkylakeX"), withSetting);
        assertNull(OpenBlasCore.advice("SkylakeX", avx512, "SkylakeX"));
        assertNull(OpenBlasCore.advice("Haswell", "fpu sse2 avx avx2 fma", null));
        assertTrue(OpenBlasCore.advice("Barcelona", "fpu sse2 avx avx2 fma", null).contains("OPENBLAS_CORETYPE=Haswell"));
        assertNull(OpenBlasCore.advice("Prescott", "fpu sse2", null));
        assertNull(OpenBlasCore.advice(null, avx512, null));
    }

    @Test
    void groupsCoverEveryBlockOnceWithinBudget() {
        BlockLayout l = Patterns.parse("bigbird(block=64)").layout(64 * 300, 64 * 300, 2);
        WorkPlan work = WorkPlan.of(l, 32);
        for (int hl = 0; hl < l.heads(); hl++) {
            List<Nd4jPlan.Group> groups = Nd4jPlan.group(work.units(hl), 64 * 64, 1L << 20);
            Set<Integer> seen = new HashSet<>();
            for (Nd4jPlan.Group g : groups) {
                assertTrue(g.units().size() == 1 || (long) g.units().size() * 64 * 64 * g.maxBlocks() <= 1L << 20);
                for (WorkPlan.Unit u : g.units()) {
                    assertTrue(u.blocks() <= g.maxBlocks() && u.blocks() <= 32);
                    for (int p = u.begin(); p < u.end(); p++) {
                        assertTrue(seen.add(p));
                    }
                }
            }
            assertEquals(l.nnz(hl), seen.size());
        }
    }

    /** A thousand plan create/forward/close cycles leave no ND4J memory behind. */
    @Test
    void planCyclesDoNotGrowOffHeapMemory() {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(256).headDim(32).build();
        BlockLayout layout = Patterns.parse("bigbird(block=32)").layout(256, 256, 2);
        Tensor q = Tensor.zeros(TensorLayout.BHSD, 1, 2, 256, 32);
        java.util.Arrays.fill(q.data(), 0.1f);
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 2, 256, 32);
        Nd4jBackend backend = new Nd4jBackend();
        for (int i = 0; i < 50; i++) {
            try (AttentionPlan plan = backend.plan(p, layout)) {
                plan.forward(q, q, q, out);
            }
        }
        System.gc();
        long before = Pointer.totalBytes();
        long rssBefore = Pointer.physicalBytes();
        for (int i = 0; i < 1000; i++) {
            try (AttentionPlan plan = backend.plan(p, layout)) {
                plan.forward(q, q, q, out);
            }
        }
        System.gc();
        long after = Pointer.totalBytes();
        long rssAfter = Pointer.physicalBytes();
        assertTrue(after - before < 4L << 20, "off-heap bytes grew from " + before + " to " + after);
        // Each plan's workspace is about 1 MB here: a leak of one per cycle would add about 1 GB.
        assertTrue(rssAfter - rssBefore < 256L << 20, "resident memory grew from " + (rssBefore >> 20) + " MB to "
                + (rssAfter >> 20) + " MB");
        assertEquals(0.1f, out.get(0, 1, 100, 5), 1e-6f);
    }
}
