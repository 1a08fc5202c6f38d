package dev.starling.backend.cuda;

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
import dev.starling.api.plan.WorkPlan;
import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;
import org.junit.jupiter.api.Test;

/** Host-side logic that runs everywhere: launch geometry, shared memory, strides, validation, error mapping, availability. */
class HostLogicTest {
    private static final int H100_SHARED = 227 * 1024;
    private static final int GA102_SHARED = 99 * 1024;

    @Test
    void geometryCoversEveryQueryRowAndFitsSharedMemory() {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(8).length(1000).headDim(128).build();
        BlockLayout l = Patterns.parse("bigbird(block=128)").layout(1000, 1000, 8);
        WorkPlan whole = WorkPlan.of(l, SplitRows.OFF);
        for (Precision precision : Precision.values()) {
            AttentionProblem pp = p.toBuilder().precision(precision).build();
            LaunchGeometry h100 = LaunchGeometry.of(pp, l, whole, H100_SHARED);
            assertEquals(2, h100.tilesPerBlock(), "a 128-row block is two 64-row tiles");
            assertEquals(8 * 2, h100.gridX(), "one unit per query block, two tiles each");
            assertEquals(16, h100.gridY());
            assertEquals(64, h100.tileK());
            assertEquals(precision == Precision.FP32 ? 256 : 128, h100.threads());
            assertTrue(h100.sharedBytes() <= H100_SHARED);
            assertEquals(h100.shared().bytes(), h100.sharedBytes(), "the launch asks for what the carve-up adds up to");
            if (precision == Precision.TF32) {
                // fp32 tiles of Q and O at D = 128 do not fit the 99 KB of sm_86/sm_89: refused with the numbers.
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> LaunchGeometry.of(pp, l, whole, GA102_SHARED));
                assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
                assertTrue(LaunchGeometry.of(pp.toBuilder().headDim(64).valueDim(64).build(), l, whole, GA102_SHARED)
                        .sharedBytes() <= GA102_SHARED);
            } else {
                LaunchGeometry ga102 = LaunchGeometry.of(pp, l, whole, GA102_SHARED);
                assertTrue(ga102.sharedBytes() <= GA102_SHARED, precision + ": " + ga102);
            }
        }
        assertEquals("starling_bf16",
                LaunchGeometry.of(p.toBuilder().precision(Precision.BF16).build(), l, whole, H100_SHARED).kernel());
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> LaunchGeometry.of(p.toBuilder().headDim(160).build(), l, whole, H100_SHARED));
        assertTrue(e.getMessage().contains("up to 128"), e.getMessage());
        assertThrows(UnsupportedOperationException.class, () -> LaunchGeometry.of(p, l, whole, 16 * 1024));
    }

    /** Without a split: one unit per query block, no merge, no workspace. */
    @Test
    void geometryWithoutSplitHasNoMergeAndNoWorkspace() {
        AttentionProblem p = AttentionProblem.builder().batch(3).heads(4).length(64 * 40).headDim(64).build();
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(64 * 40, 64 * 40, 4);
        LaunchGeometry g = LaunchGeometry.of(p, l, WorkPlan.of(l, SplitRows.OFF), H100_SHARED);
        assertEquals(40, g.gridX());
        assertEquals(12, g.gridY());
        assertFalse(g.merges());
        assertEquals(0, g.mergeGridX());
        assertEquals(0, g.workspaceRows());
        assertEquals(0, g.workspaceOutBytes());
        assertEquals(0, g.workspaceLseBytes());
    }

    /** With a split: the grid runs over every unit, the merge over every split row, the workspace holds every slot. */
    @Test
    void geometryWithSplitCountsUnitsSplitsAndWorkspace() {
        int n = 64 * 40;
        AttentionProblem p = AttentionProblem.builder().batch(3).heads(4).length(n).headDim(64).valueDim(48).build();
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(n, n, 4);
        WorkPlan w = WorkPlan.of(l, 8);
        LaunchGeometry g = LaunchGeometry.of(p, l, w, H100_SHARED);
        // Two global rows of 40 key blocks: 5 units and 5 slots each; the other 38 rows are one unit each.
        assertEquals(38 + 2 * 5, w.unitsPerLayout());
        assertEquals(38 + 2 * 5, g.gridX());
        assertEquals(12, g.gridY());
        assertTrue(g.merges());
        assertEquals(2, g.mergeGridX());
        assertEquals(10, w.slotsPerLayout());
        assertEquals(12L * 10 * 64, g.workspaceRows(), "B·Hq·slots·queryBlock");
        assertEquals(12L * 10 * 64 * 48 * 4, g.workspaceOutBytes(), "Dv floats a row");
        assertEquals(12L * 10 * 64 * 4, g.workspaceLseBytes());

        // A query block of 128 rows is two tiles per unit.
        BlockLayout big = Patterns.parse("bigbird(block=128, window=3, global=2, random=1)").layout(n, n, 4);
        WorkPlan bw = WorkPlan.of(big, 4);
        LaunchGeometry bg = LaunchGeometry.of(p, big, bw, H100_SHARED);
        assertEquals(bw.unitsPerLayout() * 2, bg.gridX());
        assertEquals(12L * bw.slotsPerLayout() * 128, bg.workspaceRows());
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.of(p, big, w, H100_SHARED),
                "a work plan of another layout is refused");
    }

    /** The carve-up the kernels receive: buffers aligned, disjoint, inside the launched bytes, with the documented strides. */
    @Test
    void sharedBuffersAreAlignedDisjointAndInsideTheLaunch() {
        for (Precision precision : Precision.values()) {
            for (int d : new int[] {1, 8, 33, 64, 100, 128}) {
                for (int dv : new int[] {1, 16, 64, 128}) {
                    for (int tileK : new int[] {32, 64}) {
                        SharedLayout s = SharedLayout.of(precision, d, dv, tileK);
                        String what = precision + " D=" + d + " Dv=" + dv + " tileK=" + tileK;
                        int ts = precision == Precision.BF16 || precision == Precision.FP16 ? 2 : 4;
                        List<int[]> ranges = new ArrayList<>();
                        if (precision == Precision.FP32) {
                            assertEquals(d + 1, s.ldq(), what);
                            assertEquals(dv, s.ldv(), what);
                            assertEquals(tileK + 1, s.ldp(), what);
                            ranges.add(new int[] {s.q(), 4 * 64 * s.ldq()});
                            ranges.add(new int[] {s.k(), 4 * tileK * s.ldq()});
                            ranges.add(new int[] {s.v(), 4 * tileK * s.ldv()});
                            ranges.add(new int[] {s.p(), 4 * 64 * s.ldp()});
                        } else {
                            assertEquals(0, s.dPad() % 16, what);
                            assertTrue(s.dPad() >= d && s.dPad() < d + 16, what);
                            assertTrue(s.dvPad() >= dv && s.dvPad() < dv + 16, what);
                            // WMMA: leading dimensions are multiples of 16 bytes.
                            for (int ld : new int[] {s.ldq(), s.ldv(), s.ldp()}) {
                                assertEquals(0, ld * ts % 16, what + " ld " + ld);
                            }
                            assertEquals(0, s.lds() * 4 % 16, what);
                            assertEquals(0, s.ldo() * 4 % 16, what);
                            ranges.add(new int[] {s.q(), ts * 64 * s.ldq()});
                            ranges.add(new int[] {s.k(), ts * tileK * s.ldq()});
                            ranges.add(new int[] {s.v(), ts * tileK * s.ldv()});
                            ranges.add(new int[] {s.s(), 4 * 64 * s.lds()});
                            ranges.add(new int[] {s.p(), ts * 64 * s.ldp()});
                            ranges.add(new int[] {s.o(), 4 * 64 * s.ldo()});
                            ranges.add(new int[] {s.tmp(), 4 * 4 * 256});
                            ranges.add(new int[] {s.m(), 4 * 64});
                            ranges.add(new int[] {s.l(), 4 * 64});
                            ranges.add(new int[] {s.seen(), 4 * 64});
                            ranges.add(new int[] {s.badKey(), 4 * LaunchGeometry.MAX_TILE_K});
                        }
                        for (int a = 0; a < ranges.size(); a++) {
                            int[] r = ranges.get(a);
                            assertEquals(0, r[0] % SharedLayout.ALIGN, what + " buffer " + a);
                            assertTrue(r[0] + r[1] + SharedLayout.ALIGN <= s.bytes(), what + " buffer " + a + " past the end");
                            for (int b = a + 1; b < ranges.size(); b++) {
                                int[] o = ranges.get(b);
                                assertTrue(r[0] + r[1] <= o[0] || o[0] + o[1] <= r[0], what + " buffers " + a + ", " + b);
                            }
                        }
                    }
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> SharedLayout.of(Precision.BF16, 129, 64, 64));
        assertThrows(IllegalArgumentException.class, () -> SharedLayout.of(Precision.BF16, 64, 64, 48 + 1));
    }

    @Test
    void stridesFollowTheLayout() {
        DeviceTensor bhsd = DeviceTensor.of(4096, TensorLayout.BHSD, 8, 100, 64);
        assertEquals(new DeviceTensor(4096, 8 * 100 * 64, 100 * 64, 64), bhsd);
        DeviceTensor bshd = DeviceTensor.of(0, TensorLayout.BSHD, 8, 100, 64);
        assertEquals(new DeviceTensor(0, 100 * 8 * 64, 64, 8 * 64), bshd);
    }

    @Test
    void deviceAddressesIncludeTheByteOffset() {
        assertEquals(0L, DeviceTensor.address(null));
        CUdeviceptr p = new CUdeviceptr();
        assertEquals(0L, DeviceTensor.address(p));
        assertEquals(256L, DeviceTensor.address(p.withByteOffset(256)));
        assertEquals(256L + 64, DeviceTensor.address(p.withByteOffset(256).withByteOffset(64)));
    }

    @Test
    void deviceOutputsMayNotOverlapInputs() {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(2).length(10).headDim(4).build();
        long bytes = 4L * 2 * 10 * 4; // 160 bytes per tensor
        CudaPlan.checkNoOverlap(p, 4, 0, 1000, 2000, 3000, 4000);
        CudaPlan.checkNoOverlap(p, 4, 0, 1000, 2000, 3000, -1);
        CudaPlan.checkNoOverlap(p, 4, 0, 1000, 2000, 2000 + bytes, 2000 + 2 * bytes);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CudaPlan.checkNoOverlap(p, 4, 0, 1000, 2000, 2000 + bytes - 4, -1));
        assertTrue(e.getMessage().startsWith("out ") && e.getMessage().contains("overlaps v"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CudaPlan.checkNoOverlap(p, 4, 0, 1000, 2000, 3000, 3000 + 8));
        assertTrue(e.getMessage().startsWith("lse ") && e.getMessage().contains("overlaps out"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CudaPlan.checkNoOverlap(p, 4, 0, 1000, 2000, 0, -1));
        assertTrue(e.getMessage().contains("overlaps q"), e.getMessage());
        // 16-bit inputs are half the bytes: an output right after 16-bit v does not overlap it.
        CudaPlan.checkNoOverlap(p, 2, 0, 1000, 2000, 2000 + bytes / 2, -1);
        assertThrows(IllegalArgumentException.class, () -> CudaPlan.checkNoOverlap(p, 2, 0, 1000, 2000, 2000 + bytes / 2 - 4, -1));
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
