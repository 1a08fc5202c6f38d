package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Precision;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import jcuda.driver.CUresult;
import org.junit.jupiter.api.Test;

/** Host-side logic that runs everywhere: packing, launch geometry, validation, error mapping, availability. */
class HostLogicTest {

    @Test
    void packingConcatenatesHeadLayoutsWithAbsoluteOffsets() {
        BlockLayout l = Patterns.parse("random(block=16, blocks=2, seed=1)").layout(64, 64, 2);
        PackedLayout p = PackedLayout.of(l);
        assertEquals(2, p.headLayouts());
        assertEquals(2 * 5, p.rowStart().length);
        assertEquals(l.nnz(0) + l.nnz(1), p.cols().length);
        for (int h = 0; h < 2; h++) {
            for (int qb = 0; qb < 4; qb++) {
                int begin = p.rowStart()[h * 5 + qb];
                int end = p.rowStart()[h * 5 + qb + 1];
                assertEquals(l.rowSize(h, qb), end - begin);
                for (int e = begin; e < end; e++) {
                    assertEquals(l.keyBlock(h, l.rowBegin(h, qb) + e - begin), p.cols()[e]);
                }
            }
        }
        BlockLayout shared = Patterns.parse("window(block=16)").layout(64, 64, 8);
        assertEquals(1, PackedLayout.of(shared).headLayouts());
    }

    @Test
    void geometryCoversEveryQueryRowAndFitsSharedMemory() {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(8).length(1000).headDim(128).build();
        BlockLayout l = Patterns.parse("bigbird(block=128)").layout(1000, 1000, 8);
        for (Precision precision : Precision.values()) {
            AttentionProblem pp = p.toBuilder().precision(precision).build();
            LaunchGeometry h100 = LaunchGeometry.of(pp, l, 227 * 1024);
            assertEquals(2, h100.tilesPerBlock(), "a 128-row block is two 64-row tiles");
            assertEquals(8 * 2, h100.gridX());
            assertEquals(16, h100.gridY());
            assertEquals(64, h100.tileK());
            assertTrue(h100.sharedBytes() <= 227 * 1024);
            if (precision == Precision.TF32) {
                // fp32 tiles of Q and O at D = 128 do not fit the 99 KB of sm_86/sm_89: refused with the numbers.
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> LaunchGeometry.of(pp, l, 99 * 1024));
                assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
                assertTrue(LaunchGeometry.of(pp.toBuilder().headDim(64).valueDim(64).build(), l, 99 * 1024).sharedBytes()
                        <= 99 * 1024);
            } else {
                LaunchGeometry ga102 = LaunchGeometry.of(pp, l, 99 * 1024);
                assertTrue(ga102.sharedBytes() <= 99 * 1024, precision + ": " + ga102);
            }
        }
        assertEquals("starling_bf16", LaunchGeometry.of(p.toBuilder().precision(Precision.BF16).build(), l, 227 * 1024).kernel());
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> LaunchGeometry.of(p.toBuilder().headDim(160).build(), l, 227 * 1024));
        assertTrue(e.getMessage().contains("up to 128"), e.getMessage());
        assertThrows(UnsupportedOperationException.class, () -> LaunchGeometry.of(p, l, 16 * 1024));
    }

    @Test
    void stridesFollowTheLayout() {
        assertArrayEquals(new long[] {8 * 100 * 64, 100 * 64, 64}, CudaPlan.strides(TensorLayout.BHSD, 8, 100, 64));
        assertArrayEquals(new long[] {100 * 8 * 64, 64, 8 * 64}, CudaPlan.strides(TensorLayout.BSHD, 8, 100, 64));
    }

    @Test
    void cudaErrorsCarryTheirName() {
        CudaException e = assertThrows(CudaException.class, () -> CudaException.check(CUresult.CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc"));
        assertEquals("cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (2)", e.getMessage());
        CudaException.check(CUresult.CUDA_SUCCESS, "fine");
    }

    @Test
    void nativeLoadFailuresBecomeReasons() {
        String r = CudaDevice.nativeReason(new UnsatisfiedLinkError("libcuda.so.1: cannot open shared object file"));
        assertTrue(r.startsWith("no libcuda.so.1"), r);
        assertTrue(CudaDevice.nativeReason(new UnsatisfiedLinkError("other")).startsWith("JCuda's native"));
    }

    /** On a machine without a usable GPU the backend says exactly why, and plan() refuses. */
    @Test
    void availabilityIsAReasonNeverAnException() {
        CudaBackend backend = new CudaBackend();
        Availability a = backend.availability();
        assertEquals(a, backend.availability(), "probed once");
        if (!a.isAvailable()) {
            assertFalse(a.reason().isBlank());
            assertTrue(a.reason().contains("libcuda.so.1") || a.reason().contains("no CUDA device")
                    || a.reason().contains("compute capability") || a.reason().contains(CudaDevice.NO_KERNELS)
                    || a.reason().contains("cuInit"), a.reason());
            AttentionProblem p = AttentionProblem.builder().heads(1).length(16).headDim(8).build();
            assertThrows(IllegalStateException.class,
                    () -> backend.plan(p, Patterns.parse("dense(block=16)").layout(16, 16, 1)));
        }
        System.out.println("cuda backend here: " + a);
    }
}
