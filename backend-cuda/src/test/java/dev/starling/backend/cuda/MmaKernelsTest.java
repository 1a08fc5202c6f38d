package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.WorkPlan;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The mma.sync kernels on the host: the switch that selects them, the table of specialisations
 * (equal to the .cu's), which shapes get one and which fall back to WMMA, their shared memory per
 * stage count and the stage choice per device, the launch geometry (the same packed units and
 * workspace as the WMMA kernels), and which kernel one call runs.
 */
class MmaKernelsTest {
    private static final int KB = 1024;
    /** Shared memory per CTA (opt-in) and per SM of the devices the kernels are compiled for. */
    private static final LaunchGeometry.DeviceLimits H100 = new LaunchGeometry.DeviceLimits(227 * KB, 228 * KB);
    private static final LaunchGeometry.DeviceLimits A100 = new LaunchGeometry.DeviceLimits(163 * KB, 164 * KB);
    private static final LaunchGeometry.DeviceLimits GA102 = new LaunchGeometry.DeviceLimits(99 * KB, 100 * KB);

    // ---- the switch

    @Test
    void kernelsPropertyIsWmmaByDefaultAndBadValuesAreRefused() {
        assertEquals(KernelFamily.WMMA, KernelFamily.parse(null));
        assertEquals(KernelFamily.WMMA, KernelFamily.DEFAULT);
        assertEquals(KernelFamily.MMA, KernelFamily.parse("mma"));
        assertEquals(KernelFamily.MMA, KernelFamily.parse(" MMA "));
        assertEquals(KernelFamily.WMMA, KernelFamily.parse("wmma"));
        for (String bad : new String[] {"", " ", "mma.sync", "wgmma", "fast", "1"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelFamily.parse(bad), bad);
            assertTrue(e.getMessage().contains("-Dstarling.cuda.kernels must be mma or wmma")
                    && e.getMessage().contains("\"" + bad + "\""), e.getMessage());
        }
        assertEquals("mma", KernelFamily.MMA.text());
    }

    @Test
    void stagesPropertyTakesTwoOrThree() {
        assertEquals(0, MmaSpecialisation.parseStages(null));
        assertEquals(2, MmaSpecialisation.parseStages("2"));
        assertEquals(3, MmaSpecialisation.parseStages(" 3 "));
        for (String bad : new String[] {"1", "4", "", "two"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MmaSpecialisation.parseStages(bad), bad);
            assertTrue(e.getMessage().contains("-Dstarling.cuda.mmaStages") && e.getMessage().contains("\"" + bad + "\""),
                    e.getMessage());
        }
    }

    /** A bad value is an error at plan creation, before any device is needed; capabilities never throw. */
    @Test
    void badPropertiesFailPlanCreationNotCapabilities() {
        for (String[] bad : new String[][] {{KernelFamily.PROPERTY, "fast"}, {MmaSpecialisation.STAGES_PROPERTY, "9"}}) {
            String old = System.getProperty(bad[0]);
            System.setProperty(bad[0], bad[1]);
            try {
                CudaBackend backend = new CudaBackend();
                assertFalse(backend.capabilities().precisions().isEmpty());
                AttentionProblem p = AttentionProblem.builder().heads(1).length(16).headDim(8).build();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> backend.plan(p, Patterns.parse("dense(block=16)").layout(16, 16, 1)));
                assertTrue(e.getMessage().contains(bad[0]), e.getMessage());
            } finally {
                restore(bad[0], old);
            }
        }
    }

    /** FP16 is declared only with the mma kernels (its kernels are new and unverified until a GPU run). */
    @Test
    void fp16IsDeclaredOnlyWithTheMmaKernels() {
        assertEquals(List.of(Precision.FP32, Precision.TF32, Precision.BF16),
                new ArrayList<>(CudaBackend.precisions(KernelFamily.WMMA)));
        assertTrue(CudaBackend.precisions(KernelFamily.MMA).contains(Precision.FP16));
        String old = System.getProperty(KernelFamily.PROPERTY);
        try {
            System.clearProperty(KernelFamily.PROPERTY);
            assertFalse(new CudaBackend().capabilities().precisions().contains(Precision.FP16));
            System.setProperty(KernelFamily.PROPERTY, "mma");
            assertTrue(new CudaBackend().capabilities().precisions().contains(Precision.FP16));
        } finally {
            restore(KernelFamily.PROPERTY, old);
        }
    }

    private static void restore(String key, String old) {
        if (old == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, old);
        }
    }

    // ---- the specialisations

    /** MmaSpecialisation.ALL is exactly the STARLING_MMA_KERNEL lines of the .cu, in order. */
    @Test
    void specialisationsAreTheOnesCompiled() throws IOException {
        String cu = KernelParamsTest.kernels();
        Matcher m = Pattern.compile("(?m)^STARLING_MMA_KERNEL\\((\\w+), (\\w+), (\\d+), (\\d+), (\\d+)\\)").matcher(cu);
        Map<String, Precision> types = Map.of("__nv_bfloat16", Precision.BF16, "__half", Precision.FP16,
                "float", Precision.TF32);
        List<MmaSpecialisation> compiled = new ArrayList<>();
        while (m.find()) {
            compiled.add(new MmaSpecialisation(m.group(1), types.get(m.group(2)), Integer.parseInt(m.group(3)),
                    Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5))));
        }
        assertEquals(MmaSpecialisation.ALL, compiled);
        for (MmaSpecialisation s : MmaSpecialisation.ALL) {
            assertEquals("starling_mma_" + s.precision().name().toLowerCase() + "_d" + s.headDim(), s.symbol());
            assertEquals(0, s.blockN() % 16, s.symbol());
            assertTrue(s.blockN() <= LaunchGeometry.MAX_TILE_K, s.symbol());
        }
        assertEquals(LaunchGeometry.TILE_Q, MmaSpecialisation.BLOCK_M, "a CTA is one 64-row tile of a query block");
        assertEquals(LaunchGeometry.MMA_THREADS, MmaSpecialisation.THREADS);
    }

    /** Which shapes get an mma kernel: D == Dv in {64, 128}, in TF32, BF16 or FP16. */
    @Test
    void specialisationSelection() {
        for (Precision p : Precision.values()) {
            for (int d : new int[] {16, 32, 48, 64, 96, 128}) {
                for (int dv : new int[] {32, 64, 128}) {
                    var found = MmaSpecialisation.find(p, d, dv);
                    boolean expected = p != Precision.FP32 && d == dv && (d == 64 || d == 128);
                    assertEquals(expected, found.isPresent(), p + " D=" + d + " Dv=" + dv);
                    found.ifPresent(s -> {
                        assertEquals(p, s.precision());
                        assertEquals(d, s.headDim());
                    });
                }
            }
        }
        assertEquals("starling_mma_tf32_d128", MmaSpecialisation.find(Precision.TF32, 128, 128).orElseThrow().symbol());
        assertEquals(32, MmaSpecialisation.find(Precision.TF32, 128, 128).orElseThrow().blockN(),
                "tf32 at D=128 uses 32-key tiles (registers and shared memory)");
        assertEquals("starling_convert_fp16", MmaSpecialisation.find(Precision.FP16, 64, 64).orElseThrow().convertKernel());
        assertNull(MmaSpecialisation.find(Precision.TF32, 64, 64).orElseThrow().convertKernel(), "tf32 reads float32");
    }

    /**
     * The carve-up per stage count: the formula of MmaShape in the .cu (Q, then the K stages, then
     * the V stages, rows padded to an odd number of 16-byte chunks), aligned, disjoint, inside the
     * launch, and within the budgets its static_asserts hold.
     */
    @Test
    void sharedMemoryPerStageCount() {
        for (MmaSpecialisation spec : MmaSpecialisation.ALL) {
            int rowBytes = spec.headDim() * spec.elementBytes() + SharedLayout.MMA_ROW_PAD_BYTES;
            assertEquals(1, rowBytes / 16 % 2, spec.symbol() + ": odd number of 16-byte chunks a row");
            if (spec.precision() == Precision.TF32) {
                assertEquals(4, (rowBytes / 4) % 32, spec.symbol() + ": tf32 V rows 4 banks apart (scalar loads)");
            }
            int qBytes = SharedLayout.roundUp(MmaSpecialisation.BLOCK_M * rowBytes, SharedLayout.ALIGN);
            int stageBytes = SharedLayout.roundUp(spec.blockN() * rowBytes, SharedLayout.ALIGN);
            int previous = 0;
            for (int stages = MmaSpecialisation.MIN_STAGES; stages <= MmaSpecialisation.MAX_STAGES; stages++) {
                SharedLayout s = spec.shared(stages);
                String what = spec.symbol() + " " + stages + " stages";
                assertEquals(stages, s.stages(), what);
                assertEquals(stageBytes, s.stageBytes(), what);
                assertEquals(rowBytes / spec.elementBytes(), s.ldq(), what);
                assertEquals(s.ldq(), s.ldv(), what);
                assertEquals(0, s.q(), what);
                assertEquals(qBytes, s.k(), what);
                assertEquals(qBytes + stages * stageBytes, s.v(), what);
                assertEquals(SharedLayout.ALIGN + qBytes + 2 * stages * stageBytes, s.bytes(), what);
                assertTrue(s.v() + stages * stageBytes + SharedLayout.ALIGN <= s.bytes(), what + ": inside the launch");
                for (int offset : new int[] {s.q(), s.k(), s.v(), s.stageBytes()}) {
                    assertEquals(0, offset % SharedLayout.ALIGN, what);
                }
                assertEquals(-1, s.s(), what + ": no S buffer, S and P live in registers");
                assertEquals(-1, s.o(), what + ": no O buffer");
                assertTrue(s.bytes() > previous, what + ": more stages, more memory");
                previous = s.bytes();
            }
            assertTrue(spec.shared(2).bytes() <= 227 * KB, spec.symbol() + ": two stages fit an sm_90 CTA");
            if (spec.readsSixteenBit()) {
                assertTrue(spec.shared(2).bytes() <= 99 * KB, spec.symbol() + ": two stages fit sm_86/sm_89");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> MmaSpecialisation.ALL.get(0).shared(1));
        assertThrows(IllegalArgumentException.class, () -> MmaSpecialisation.ALL.get(0).shared(4));
    }

    /** The stage count per device: most CTAs per SM (capped by the registers), then the deeper pipeline. */
    @Test
    void stageChoicePerDevice() {
        MmaSpecialisation bf16d64 = MmaSpecialisation.find(Precision.BF16, 64, 64).orElseThrow();
        MmaSpecialisation bf16d128 = MmaSpecialisation.find(Precision.BF16, 128, 128).orElseThrow();
        MmaSpecialisation tf32d64 = MmaSpecialisation.find(Precision.TF32, 64, 64).orElseThrow();
        MmaSpecialisation tf32d128 = MmaSpecialisation.find(Precision.TF32, 128, 128).orElseThrow();
        // H100/H200: D=64 at 3 stages still fits the 3 CTAs its registers allow; D=128 keeps 2 CTAs with 2 stages.
        assertEquals(3, stages(bf16d64, H100));
        assertEquals(2, stages(bf16d128, H100));
        assertEquals(2, stages(tf32d64, H100));
        assertEquals(2, stages(tf32d128, H100));
        // A100: D=64 keeps 3 CTAs with 2 stages; D=128 is one CTA either way, so 3 stages.
        assertEquals(2, stages(bf16d64, A100));
        assertEquals(3, stages(bf16d128, A100));
        assertEquals(3, stages(tf32d128, A100));
        // sm_86/sm_89 (99 KB): 2 stages, and tf32 at D=128 does not fit at all.
        assertEquals(2, stages(bf16d64, GA102));
        assertEquals(2, stages(bf16d128, GA102));
        assertEquals(0, stages(tf32d128, GA102));
        // Forced: taken when it fits, 0 (fall back) when it does not.
        assertEquals(3, bf16d128.chooseStages(H100.maxSharedPerBlock(), H100.sharedPerSm(), 3));
        assertEquals(2, bf16d64.chooseStages(H100.maxSharedPerBlock(), H100.sharedPerSm(), 2));
        assertEquals(0, bf16d128.chooseStages(GA102.maxSharedPerBlock(), GA102.sharedPerSm(), 3));
        for (MmaSpecialisation spec : MmaSpecialisation.ALL) {
            for (LaunchGeometry.DeviceLimits dev : new LaunchGeometry.DeviceLimits[] {H100, A100, GA102}) {
                int st = stages(spec, dev);
                if (st > 0) {
                    assertTrue(spec.shared(st).bytes() <= dev.maxSharedPerBlock(), spec.symbol());
                }
            }
        }
    }

    private static int stages(MmaSpecialisation spec, LaunchGeometry.DeviceLimits dev) {
        return spec.chooseStages(dev.maxSharedPerBlock(), dev.sharedPerSm(), 0);
    }

    // ---- the launch geometry

    @Test
    void mmaGeometryForTheSpecialisedShapes() {
        int n = 64 * 40;
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(n, n, 4);
        WorkPlan w = WorkPlan.of(l, SplitRows.OFF);
        for (MmaSpecialisation spec : MmaSpecialisation.ALL) {
            AttentionProblem p = AttentionProblem.builder().batch(2).heads(4).length(n).headDim(spec.headDim())
                    .precision(spec.precision()).build();
            LaunchGeometry g = LaunchGeometry.of(p, l, w, H100, KernelFamily.MMA, 0);
            assertSame(spec, g.mma(), spec.symbol());
            assertEquals(spec.symbol(), g.kernel());
            assertEquals(MmaSpecialisation.THREADS, g.threads());
            assertEquals(spec.blockN(), g.tileK());
            assertEquals(stages(spec, H100), g.shared().stages());
            assertEquals(spec.shared(g.shared().stages()), g.shared());
            if (spec.readsSixteenBit()) {
                assertTrue(g.converts());
                assertEquals(spec.convertKernel(), g.convertKernel());
                assertEquals(spec.symbol(), g.kernel16(), "16-bit inputs run the same kernel, without the conversion");
                // One element a thread for the largest tensor, capped.
                long largest = 2L * 4 * n * spec.headDim();
                assertEquals(Math.min(LaunchGeometry.MAX_CONVERT_BLOCKS,
                        (largest + LaunchGeometry.CONVERT_THREADS - 1) / LaunchGeometry.CONVERT_THREADS), g.convertGridX());
            } else {
                assertFalse(g.converts());
                assertEquals(0, g.convertGridX());
                assertNull(g.kernel16());
            }
            assertTrue(g.describe().startsWith(spec.symbol()), g.describe());
            // The WMMA family never runs it.
            LaunchGeometry wmma = LaunchGeometry.of(p, l, w, H100, KernelFamily.WMMA, 0);
            assertNull(wmma.mma());
            assertEquals(LaunchGeometry.kernelName(spec.precision()), wmma.kernel());
        }
    }

    /** Other shapes, FP32, or a device where no stage count fits: the WMMA (or fp32) kernels, as today. */
    @Test
    void otherShapesFallBackToTheWmmaKernels() {
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(1000, 1000, 2);
        WorkPlan w = WorkPlan.of(l, SplitRows.OFF);
        Object[][] cases = {
            {Precision.BF16, 96, 96, H100, "starling_bf16"},
            {Precision.BF16, 64, 128, H100, "starling_bf16"},
            {Precision.FP16, 32, 32, H100, "starling_fp16"},
            {Precision.FP32, 64, 64, H100, "starling_fp32"},
        };
        for (Object[] c : cases) {
            AttentionProblem p = AttentionProblem.builder().heads(2).length(1000).precision((Precision) c[0])
                    .headDim((int) c[1]).valueDim((int) c[2]).build();
            LaunchGeometry g = LaunchGeometry.of(p, l, w, (LaunchGeometry.DeviceLimits) c[3], KernelFamily.MMA, 0);
            String what = c[0] + " D=" + c[1] + " Dv=" + c[2];
            assertNull(g.mma(), what);
            assertEquals(c[4], g.kernel(), what);
            assertFalse(g.converts(), what + ": the WMMA kernels read float32 themselves");
            assertEquals(LaunchGeometry.sixteenBitKernelName((Precision) c[0]), g.kernel16(), what);
        }
        // Neither fits: refused with the numbers, as without the mma kernels.
        AttentionProblem tf32 = AttentionProblem.builder().heads(2).length(1000).headDim(128).precision(Precision.TF32).build();
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> LaunchGeometry.of(tf32, l, w, GA102, KernelFamily.MMA, 0));
        assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
        assertEquals("starling_fp16_in16", LaunchGeometry.sixteenBitKernelName(Precision.FP16));
        assertEquals("starling_bf16_in16", LaunchGeometry.sixteenBitKernelName(Precision.BF16));
        assertNull(LaunchGeometry.sixteenBitKernelName(Precision.TF32));
    }

    /** The mma kernels run the same packed units: the grid, the merge and the workspace do not depend on the family. */
    @Test
    void mmaKernelsReuseTheUnitPacking() {
        int n = 64 * 48;
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(n, n, 8);
        for (int split : new int[] {SplitRows.OFF, 16, 1}) {
            WorkPlan w = WorkPlan.of(l, split);
            for (MmaSpecialisation spec : MmaSpecialisation.ALL) {
                AttentionProblem p = AttentionProblem.builder().batch(2).heads(8).length(n).headDim(spec.headDim())
                        .precision(spec.precision()).build();
                LaunchGeometry mma = LaunchGeometry.of(p, l, w, H100, KernelFamily.MMA, 0);
                LaunchGeometry wmma = LaunchGeometry.of(p, l, w, H100, KernelFamily.WMMA, 0);
                String what = spec.symbol() + " split " + split;
                assertEquals(spec.symbol(), mma.kernel(), what);
                assertEquals(w.unitsPerLayout() * mma.tilesPerBlock(), mma.gridX(), what + ": one CTA per unit and tile");
                assertEquals(wmma.gridX(), mma.gridX(), what);
                assertEquals(wmma.gridY(), mma.gridY(), what);
                assertEquals(wmma.tilesPerBlock(), mma.tilesPerBlock(), what);
                assertEquals(wmma.mergeGridX(), mma.mergeGridX(), what);
                assertEquals(wmma.workspaceRows(), mma.workspaceRows(), what);
                assertEquals(wmma.workspaceOutFloats(), mma.workspaceOutFloats(), what);
                assertEquals(split != SplitRows.OFF, mma.merges(), what);
            }
        }
        // Longest units first: the first CTAs of the grid take the split global rows' longest parts.
        WorkPlan w = WorkPlan.of(l, 16);
        assertEquals(16, w.units(0).get(0).blocks());
        assertTrue(w.units(0).get(w.units(0).size() - 1).blocks() <= 16);
    }

    /**
     * The mma kernels read the grid heads-fastest ({@code tile_of_heads_fastest} in the .cu, mirrored
     * here): a bijection of the grid, and in dispatch order every head's longest units come first.
     */
    @Test
    void headsFastestOrderStartsEveryHeadsLongestUnitsFirst() {
        int n = 64 * 64;
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(n, n, 4);
        WorkPlan w = WorkPlan.of(l, SplitRows.OFF);
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(4).length(n).headDim(64)
                .precision(Precision.BF16).build();
        LaunchGeometry g = LaunchGeometry.of(p, l, w, H100, KernelFamily.MMA, 0);
        int gx = g.gridX();
        int gy = g.gridY();
        boolean[][] seen = new boolean[gy][gx];
        int[] units = w.packUnits();
        for (long linear = 0; linear < (long) gx * gy; linear++) {
            int bh = (int) (linear % gy);
            int unitTile = (int) (linear / gy);
            assertFalse(seen[bh][unitTile], "each (head, unit tile) once");
            seen[bh][unitTile] = true;
            int head = bh % p.queryHeads();
            int unit = unitTile / g.tilesPerBlock();
            int at = (head * w.unitsPerLayout() + unit) * WorkPlan.UNIT_INTS;
            if (linear < gy) {
                // The first wave: unit 0 of every (batch, head), a global row of the full width.
                assertEquals(0, unit);
                assertEquals(l.keyBlocks(), units[at + 2] - units[at + 1], "head " + head + " starts with its longest unit");
            }
        }
    }

    /** Which kernel one call runs: aligned inputs the mma kernel, misaligned ones it reads directly the WMMA fallback. */
    @Test
    void eachCallPicksItsKernel() {
        int n = 640;
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(n, n, 2);
        WorkPlan w = WorkPlan.of(l, SplitRows.OFF);
        AttentionProblem bf16 = AttentionProblem.builder().heads(2).length(n).headDim(128).precision(Precision.BF16).build();
        LaunchGeometry g = LaunchGeometry.of(bf16, l, w, H100, KernelFamily.MMA, 0);
        LaunchGeometry fb = LaunchGeometry.of(bf16, l, w, H100, KernelFamily.WMMA, 0);
        var f32 = LaunchGeometry.Inputs.FLOAT32;
        var h16 = LaunchGeometry.Inputs.SIXTEEN_BIT;
        // float32 inputs are converted into the plan's copies: their own alignment does not matter.
        assertEquals(new LaunchGeometry.Launch(g, "starling_mma_bf16_d128", true), LaunchGeometry.select(g, fb, f32, 0, 256, 512));
        assertEquals(new LaunchGeometry.Launch(g, "starling_mma_bf16_d128", true), LaunchGeometry.select(g, fb, f32, 4, 256, 512));
        // 16-bit inputs: read directly, no conversion; misaligned ones run the WMMA kernel for 16-bit inputs.
        assertEquals(new LaunchGeometry.Launch(g, "starling_mma_bf16_d128", false), LaunchGeometry.select(g, fb, h16, 0, 256, 512));
        assertEquals(new LaunchGeometry.Launch(fb, "starling_bf16_in16", false), LaunchGeometry.select(g, fb, h16, 0, 258, 512));
        // tf32 reads float32 directly.
        AttentionProblem tf32 = bf16.toBuilder().precision(Precision.TF32).build();
        LaunchGeometry t = LaunchGeometry.of(tf32, l, w, H100, KernelFamily.MMA, 0);
        LaunchGeometry tfb = LaunchGeometry.of(tf32, l, w, H100, KernelFamily.WMMA, 0);
        assertEquals(new LaunchGeometry.Launch(t, "starling_mma_tf32_d128", false), LaunchGeometry.select(t, tfb, f32, 0, 16, 32));
        assertEquals(new LaunchGeometry.Launch(tfb, "starling_tf32", false), LaunchGeometry.select(t, tfb, f32, 0, 16, 36));
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> LaunchGeometry.select(t, tfb, h16, 0, 16, 32));
        assertTrue(e.getMessage().contains("BF16 or FP16"), e.getMessage());
        // The WMMA family: 16-bit inputs run the *_in16 kernel, float32 the usual one; no fallback is needed.
        assertEquals(new LaunchGeometry.Launch(fb, "starling_bf16_in16", false), LaunchGeometry.select(fb, null, h16, 2, 4, 6));
        assertEquals(new LaunchGeometry.Launch(fb, "starling_bf16", false), LaunchGeometry.select(fb, null, f32, 2, 4, 6));
    }
}
