package dev.starling.backend.cuda;

import dev.starling.api.Feature;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.WorkPlan;
import dev.starling.backend.cuda.KernelParams.Field;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The backward pass's host logic, which runs without a GPU: the packed columns the dK/dV kernel
 * walks, the launch geometry and shared-memory carve-ups, the struct a backward launch receives,
 * and the property that declares the capability. The kernels themselves are unverified until a GPU
 * runs {@code backend-cuda/gpu/check.sh}.
 */
class BackwardHostLogicTest {
    private static final int H100_SHARED = 227 * 1024;
    private static final int A100_SHARED = 163 * 1024;
    private static final int GA102_SHARED = 99 * 1024;

    /** Every (head layout, key block) column, read back from the packed arrays as the kernel reads them. */
    @Test
    void packedColumnsAreTheLayoutsColumnsInOrder() {
        List<BlockLayout> layouts = List.of(
                Patterns.parse("bigbird(block=32, window=3, global=2, random=2, seed=7)").layout(300, 500, 4),
                Patterns.parse("window(block=64, blocks=3)").layout(640, 640, 8),
                Patterns.parse("causal(dense(block=16))").layout(100, 130, 1),
                Patterns.parse("fixed(block=32, local=2, global=1)").layout(256, 256, 2));
        for (BlockLayout layout : layouts) {
            LayoutColumns columns = LayoutColumns.of(layout);
            int[] starts = BackwardColumns.packStarts(columns);
            int[] queryBlocks = BackwardColumns.packQueryBlocks(columns);
            int nkb = layout.keyBlocks();
            assertEquals(layout.heads() * (nkb + 1), starts.length);
            long pairs = 0;
            for (int hl = 0; hl < layout.heads(); hl++) {
                int[] seen = new int[layout.queryBlocks() * nkb];
                for (int kb = 0; kb < nkb; kb++) {
                    int from = starts[hl * (nkb + 1) + kb];
                    int to = starts[hl * (nkb + 1) + kb + 1];
                    assertEquals(columns.columnEnd(hl, kb) - columns.columnBegin(hl, kb), to - from,
                            "column size, head layout " + hl + ", key block " + kb);
                    for (int at = from; at < to; at++) {
                        int qb = queryBlocks[at];
                        assertEquals(columns.queryBlock(hl, columns.columnBegin(hl, kb) + at - from), qb);
                        assertTrue(at == from || queryBlocks[at - 1] < qb, "ascending: the fixed summation order");
                        seen[qb * nkb + kb]++;
                    }
                }
                // Exactly the CSR's (query block, key block) pairs, each once.
                for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                    int[] expected = new int[nkb];
                    for (int p = layout.rowBegin(hl, qb); p < layout.rowEnd(hl, qb); p++) {
                        expected[layout.keyBlock(hl, p)]++;
                        pairs++;
                    }
                    for (int kb = 0; kb < nkb; kb++) {
                        assertEquals(expected[kb], seen[qb * nkb + kb], "pair (" + qb + ", " + kb + ") of head layout " + hl);
                    }
                }
            }
            assertEquals(pairs, queryBlocks.length, "no pair twice, none missing");
            assertEquals(queryBlocks.length, starts[starts.length - 1]);
        }
    }

    @Test
    void geometryCoversEveryRowAndKeyAndFitsTheDevice() {
        AttentionProblem p = AttentionProblem.builder().batch(3).heads(8).kvHeads(2).queryLength(300).keyLength(500)
                .headDim(128).valueDim(96).build();
        BlockLayout l = Patterns.parse("bigbird(block=128, window=3, global=1, random=1)").layout(300, 500, 8);
        WorkPlan whole = WorkPlan.of(l, SplitRows.OFF);
        BackwardGeometry g = BackwardGeometry.of(p, l, whole, H100_SHARED);
        assertEquals(24, g.gridY());
        assertEquals(6, g.dkdvGridY(), "batch × kv heads");
        assertEquals((300 + 7) / 8, g.deltaGridX(), "a warp per row");
        assertEquals(2, g.tilesPerBlock());
        assertEquals(whole.unitsPerLayout() * 2, g.dqGridX());
        assertEquals(2, g.keyTilesPerBlock(), "128-key blocks in 64-key tiles");
        assertEquals(l.keyBlocks() * 2, g.dkdvGridX());
        assertTrue((long) g.dkdvGridX() * LaunchGeometry.MAX_TILE_K >= 500, "every key has a CTA");
        assertEquals(64, g.tileK());
        assertEquals(64, g.rows());
        assertTrue(g.dqShared().bytes() <= H100_SHARED && g.dkdvShared().bytes() <= H100_SHARED);
        // D = Dv = 128: 64-key tiles and 64-row chunks fit the A100's 163 KB; a 99 KB device takes 16 of each.
        AttentionProblem d128 = p.toBuilder().valueDim(128).build();
        BackwardGeometry a100 = BackwardGeometry.of(d128, l, whole, A100_SHARED);
        assertEquals(64, a100.tileK());
        assertEquals(64, a100.rows());
        BackwardGeometry small = BackwardGeometry.of(d128, l, whole, GA102_SHARED);
        assertEquals(16, small.tileK());
        assertEquals(16, small.rows());
        assertTrue(small.dqShared().bytes() <= GA102_SHARED && small.dkdvShared().bytes() <= GA102_SHARED);
        assertThrows(UnsupportedOperationException.class, () -> BackwardGeometry.of(d128, l, whole, 48 * 1024),
                "no tile fits: refused with the bytes needed");
        assertThrows(IllegalArgumentException.class, () -> BackwardGeometry.of(p, l, WorkPlan.of(l, 1), H100_SHARED),
                "dQ needs whole rows");
        BlockLayout other = Patterns.parse("dense(block=128)").layout(300, 500, 8);
        assertThrows(IllegalArgumentException.class, () -> BackwardGeometry.of(p, other, whole, H100_SHARED));
    }

    /** The backward carve-ups: buffers aligned, disjoint, inside the launch, with the documented strides. */
    @Test
    void backwardSharedBuffersAreAlignedDisjointAndInsideTheLaunch() {
        for (int d : new int[] {1, 33, 64, 128}) {
            for (int dv : new int[] {1, 64, 100, 128}) {
                for (int n : new int[] {16, 32, 64}) {
                    SharedLayout dq = SharedLayout.forBackwardDq(d, dv, n);
                    String what = "dq D=" + d + " Dv=" + dv + " tileK=" + n;
                    assertEquals(d + 1, dq.ldq(), what);
                    assertEquals(dv + 1, dq.ldv(), what);
                    assertEquals(dv + 1, dq.ldo(), what);
                    assertEquals(n + 1, dq.lds(), what);
                    checkRanges(what, dq, List.of(new int[] {dq.q(), 4 * 64 * dq.ldq()},
                            new int[] {dq.k(), 4 * n * dq.ldq()}, new int[] {dq.v(), 4 * n * dq.ldv()},
                            new int[] {dq.o(), 4 * 64 * dq.ldo()}, new int[] {dq.s(), 4 * 64 * dq.lds()}));
                    SharedLayout kv = SharedLayout.forBackwardDkdv(d, dv, n);
                    what = "dkdv D=" + d + " Dv=" + dv + " rows=" + n;
                    assertEquals(65, kv.ldp(), what);
                    assertEquals(65, kv.lds(), what);
                    checkRanges(what, kv, List.of(new int[] {kv.k(), 4 * 64 * kv.ldq()},
                            new int[] {kv.v(), 4 * 64 * kv.ldv()}, new int[] {kv.q(), 4 * n * kv.ldq()},
                            new int[] {kv.o(), 4 * n * kv.ldo()}, new int[] {kv.p(), 4 * n * kv.ldp()},
                            new int[] {kv.s(), 4 * n * kv.lds()}, new int[] {kv.m(), 4 * n}, new int[] {kv.l(), 4 * n},
                            new int[] {kv.seen(), 4 * n}));
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> SharedLayout.forBackwardDq(129, 64, 64));
        assertThrows(IllegalArgumentException.class, () -> SharedLayout.forBackwardDkdv(64, 64, 48 + 1));
    }

    private static void checkRanges(String what, SharedLayout s, List<int[]> ranges) {
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

    /** A backward launch: the gradients' own strides, the workspace, the columns and the chosen carve-up reach the struct. */
    @Test
    void aBackwardLaunchFillsItsFields() {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(6).kvHeads(3).queryLength(200).keyLength(260)
                .headDim(40).valueDim(24).causal(true).build();
        BlockLayout l = Patterns.parse("window(block=64, blocks=3)").layout(200, 260, 6);
        WorkPlan whole = WorkPlan.of(l, SplitRows.OFF);
        BackwardGeometry g = BackwardGeometry.of(p, l, whole, H100_SHARED);
        KernelParams.PlanBuffers plan = new KernelParams.PlanBuffers(0x1000, 0x2000, 0, 0, 0, 0, 0);
        DeviceTensor q = DeviceTensor.of(0x10000, TensorLayout.BHSD, 6, 200, 40);
        DeviceTensor k = DeviceTensor.of(0x20000, TensorLayout.BHSD, 3, 260, 40);
        DeviceTensor v = DeviceTensor.of(0x30000, TensorLayout.BHSD, 3, 260, 24);
        DeviceTensor o = DeviceTensor.of(0x40000, TensorLayout.BHSD, 6, 200, 24);
        DeviceTensor dOut = DeviceTensor.of(0x60000, TensorLayout.BSHD, 6, 200, 24);
        DeviceTensor dq = DeviceTensor.of(0x70000, TensorLayout.BSHD, 6, 200, 40);
        DeviceTensor dk = DeviceTensor.of(0x80000, TensorLayout.BSHD, 3, 260, 40);
        DeviceTensor dv = DeviceTensor.of(0x90000, TensorLayout.BHSD, 3, 260, 24);
        KernelParams.Backward grads = new KernelParams.Backward(dOut, dq, dk, dv, 0xA0000, 0xB0000, 0xC0000,
                l.keyBlocks(), g.keyTilesPerBlock(), g.rows());
        KernelParams kp = KernelParams.backward(p, true, l, whole, g, g.dkdvShared(), plan, q, k, v, o, 0x50000, grads);
        assertEquals(0x60000L, kp.getLong(Field.D_OUT));
        assertEquals(0x70000L, kp.getLong(Field.GRAD_Q));
        assertEquals(0x80000L, kp.getLong(Field.GRAD_K));
        assertEquals(0x90000L, kp.getLong(Field.GRAD_V));
        assertEquals(0xA0000L, kp.getLong(Field.DELTA));
        assertEquals(0xB0000L, kp.getLong(Field.COL_STARTS));
        assertEquals(0xC0000L, kp.getLong(Field.COL_QUERY_BLOCKS));
        assertEquals(200L * 6 * 24, kp.getLong(Field.GSB));
        assertEquals(24L, kp.getLong(Field.GSH), "dO in BSHD while out is BHSD");
        assertEquals(6L * 24, kp.getLong(Field.GSN));
        assertEquals(6L * 40, kp.getLong(Field.DQSN));
        assertEquals(3L * 40, kp.getLong(Field.DKSN));
        assertEquals(260L * 24, kp.getLong(Field.DVSH));
        assertEquals(24L, kp.getLong(Field.DVSN));
        assertEquals(5, kp.getInt(Field.KEY_BLOCK_COUNT));
        assertEquals(1, kp.getInt(Field.KEY_TILES_PER_BLOCK));
        assertEquals(64, kp.getInt(Field.BWD_ROWS));
        assertEquals(1, kp.getInt(Field.CAUSAL));
        assertEquals(2, kp.getInt(Field.GROUP));
        assertEquals(g.dkdvShared().bytes(), kp.getInt(Field.SM_BYTES));
        assertEquals(g.dkdvShared().seen(), kp.getInt(Field.SM_SEEN));
        assertEquals(g.dkdvShared().p(), kp.getInt(Field.SM_P));
        assertEquals(0L, kp.getLong(Field.SPLITS));
        KernelParams dqLaunch = KernelParams.backward(p, true, l, whole, g, g.dqShared(), plan, q, k, v, o, 0x50000, grads);
        assertEquals(g.dqShared().bytes(), dqLaunch.getInt(Field.SM_BYTES));
        assertEquals(g.dqShared().o(), dqLaunch.getInt(Field.SM_O));
        assertEquals(g.tileK(), dqLaunch.getInt(Field.TILE_K));
        assertEquals(whole.unitsPerLayout(), dqLaunch.getInt(Field.UNITS_PER_LAYOUT));
    }

    /** Off unless -Dstarling.cuda.backward=true: nothing could be verified on a GPU yet. */
    @Test
    void backwardIsDeclaredOnlyWhenThePropertySaysSo() {
        String before = System.getProperty(CudaBackend.BACKWARD_PROPERTY);
        try {
            System.clearProperty(CudaBackend.BACKWARD_PROPERTY);
            assertFalse(new CudaBackend().capabilities().has(Feature.BACKWARD), "default off");
            System.setProperty(CudaBackend.BACKWARD_PROPERTY, "yes");
            assertFalse(new CudaBackend().capabilities().has(Feature.BACKWARD), "only true turns it on");
            System.setProperty(CudaBackend.BACKWARD_PROPERTY, "true");
            assertTrue(new CudaBackend().capabilities().has(Feature.BACKWARD));
        } finally {
            if (before == null) {
                System.clearProperty(CudaBackend.BACKWARD_PROPERTY);
            } else {
                System.setProperty(CudaBackend.BACKWARD_PROPERTY, before);
            }
        }
    }
}
