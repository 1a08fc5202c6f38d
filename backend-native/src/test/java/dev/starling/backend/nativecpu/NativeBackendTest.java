package dev.starling.backend.nativecpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Path choice, the level cap, and the clean fallback when the library cannot load. */
class NativeBackendTest {
    @Test
    void aMissingLibraryIsAReasonNotACrash() {
        String why = NativeKernels.load("/dev/starling/backend/nativecpu/no-such-library.so");
        assertNotNull(why);
        assertTrue(why.contains("not compiled into this jar"), why);
    }

    @Test
    void theLibraryOfThisBuildLoads() {
        assertNull(NativeKernels.loadFailure(), "built with gcc on Linux x86-64, the library must load");
        System.out.println("starling native: " + new NativeBackend().availability());
    }

    @Test
    void eachPrecisionTakesTheHighestPathOfItsLevel() {
        assertEquals(KernelPath.AMX_BF16, KernelPath.best(Precision.BF16, Isa.AMX));
        assertEquals(KernelPath.AVX512_FP32, KernelPath.best(Precision.FP32, Isa.AMX));
        assertEquals(KernelPath.AVX512_BF16, KernelPath.best(Precision.BF16, Isa.AVX512_BF16));
        assertEquals(KernelPath.PORTABLE_BF16, KernelPath.best(Precision.BF16, Isa.AVX512));
        assertEquals(KernelPath.AVX2_FP32, KernelPath.best(Precision.FP32, Isa.AVX2));
        assertEquals(KernelPath.PORTABLE_FP32, KernelPath.best(Precision.FP32, Isa.PORTABLE));
        assertNull(KernelPath.best(Precision.FP16, Isa.AMX));
    }

    @Test
    void theCapNeverRaisesTheMachinesLevel() {
        Isa machine = NativeKernels.machineIsa(NativeKernels.probe());
        assertEquals(Isa.PORTABLE, NativeBackend.withIsa(Isa.PORTABLE).level());
        assertEquals(machine, NativeBackend.withIsa(Isa.AMX).level());
        assertTrue(NativeBackend.withIsa(Isa.AVX2).level().compareTo(Isa.AVX2) <= 0);
    }

    @Test
    void theLevelParsesAndABadOneNamesTheChoices() {
        assertEquals(Isa.AVX512_BF16, Isa.parse(" AVX512-BF16 "));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Isa.parse("sse9"));
        assertTrue(e.getMessage().contains("sse9") && e.getMessage().contains("amx"), e.getMessage());
    }

    @Test
    void thePropertyCapsTheLevel() {
        String old = System.getProperty(NativeBackend.ISA_PROPERTY);
        try {
            System.setProperty(NativeBackend.ISA_PROPERTY, "portable");
            NativeBackend backend = new NativeBackend();
            assertEquals(KernelPath.PORTABLE_BF16, backend.path(Precision.BF16));
            assertTrue(backend.availability().reason().contains("portable-bf16"), backend.availability().toString());
            System.setProperty(NativeBackend.ISA_PROPERTY, "sse9");
            assertTrue(!backend.availability().isAvailable() && backend.availability().reason().contains("sse9"));
        } finally {
            if (old == null) {
                System.clearProperty(NativeBackend.ISA_PROPERTY);
            } else {
                System.setProperty(NativeBackend.ISA_PROPERTY, old);
            }
        }
    }

    /** Long rows split across threads come back as partials and merge to the one-thread answer. */
    @Test
    void splitRowsMergeToTheUnsplitAnswer() {
        AttentionProblem problem = AttentionProblem.builder().heads(2).length(2048).headDim(64).build();
        BlockLayout layout = Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=0)").layout(2048, 2048, 2);
        Random rnd = new Random(7);
        float[][] data = new float[3][2 * 2048 * 64];
        for (float[] d : data) {
            for (int x = 0; x < d.length; x++) {
                d[x] = (float) rnd.nextGaussian();
            }
        }
        Tensor q = Tensor.bhsd(data[0], 1, 2, 2048, 64);
        Tensor k = Tensor.bhsd(data[1], 1, 2, 2048, 64);
        Tensor v = Tensor.bhsd(data[2], 1, 2, 2048, 64);
        Tensor one = Tensor.zeros(q.layout(), 1, 2, 2048, 64);
        Tensor many = Tensor.zeros(q.layout(), 1, 2, 2048, 64);
        float[] lseOne = new float[2 * 2048];
        float[] lseMany = new float[2 * 2048];
        try (AttentionPlan p1 = NativeBackend.withThreads(1).plan(problem, layout);
             AttentionPlan p8 = NativeBackend.withThreads(8).plan(problem, layout)) {
            assertTrue(NativePlan.maxBlocksPerUnit(layout, 2, 2, 8) < layout.keyBlocks(), "the global rows must split");
            p1.forward(q, k, v, one, lseOne);
            p8.forward(q, k, v, many, lseMany);
        }
        for (int x = 0; x < one.data().length; x++) {
            assertEquals(one.data()[x], many.data()[x], 1e-5f, "output element " + x);
        }
        for (int x = 0; x < lseOne.length; x++) {
            assertEquals(lseOne[x], lseMany[x], 1e-5f, "lse " + x);
        }
    }
}
