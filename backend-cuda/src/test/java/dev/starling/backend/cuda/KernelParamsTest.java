package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.WorkPlan;
import dev.starling.backend.cuda.KernelParams.Field;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The kernel argument struct: the offsets {@link KernelParams} writes are the ones the .cu pins
 * with {@code static_assert(offsetof(Params, ...))} (which nvcc checks against the real struct),
 * the constants shared with the .cu agree, and one call fills every field with the right value.
 */
class KernelParamsTest {
    private static final Path KERNELS = Path.of("src/main/cuda/sparse_attention.cu");
    /** Where the build writes params.cuh ({@link ParamsHeader}). */
    private static final Path GENERATED = Path.of("target/generated-cuda");

    /**
     * The kernels' source as nvcc sees it: sparse_attention.cu with each {@code #include "x.cuh"} line
     * replaced by that header's text (the headers beside it, or the generated ones: nvcc's {@code -I}).
     */
    static String kernels() throws IOException {
        StringBuilder out = new StringBuilder();
        for (String line : Files.readAllLines(KERNELS)) {
            Matcher include = Pattern.compile("^#include \"(\\w+\\.cuh)\"$").matcher(line);
            if (include.matches()) {
                Path beside = KERNELS.resolveSibling(include.group(1));
                out.append(Files.readString(Files.exists(beside) ? beside : GENERATED.resolve(include.group(1))));
            } else {
                out.append(line);
            }
            out.append('\n');
        }
        return out.toString();
    }

    /** The build wrote the header of the current field list, and the kernels include it. */
    @Test
    void theKernelsIncludeTheGeneratedHeader() throws IOException {
        assertEquals(KernelParams.header(), Files.readString(GENERATED.resolve("params.cuh")));
        assertTrue(Files.readString(KERNELS).contains("#include \"params.cuh\""));
        assertTrue(!Files.exists(KERNELS.resolveSibling("params.cuh")), "no hand-written copy of the struct");
        String h = KernelParams.header();
        assertEquals(1, count(h, "struct Params {"));
        assertTrue(h.contains("    const float* q;") && h.contains("    long long causalShift;"), h);
    }

    @Test
    void offsetsMatchTheStaticAssertsOfTheKernels() throws IOException {
        String cu = kernels();
        Map<String, Integer> pinned = new LinkedHashMap<>();
        Matcher m = Pattern.compile("static_assert\\(offsetof\\(Params, (\\w+)\\) == (\\d+)").matcher(cu);
        while (m.find()) {
            pinned.put(m.group(1), Integer.parseInt(m.group(2)));
        }
        assertEquals(Field.values().length, pinned.size(), "one static_assert per field: " + pinned.keySet());
        int previous = -1;
        for (Field f : Field.values()) {
            Integer at = pinned.get(f.cName);
            assertEquals(at, KernelParams.offset(f), "offset of " + f.cName);
            assertTrue(KernelParams.offset(f) > previous, f.cName + " is declared in order");
            assertEquals(0, KernelParams.offset(f) % f.type.bytes, f.cName + " is naturally aligned");
            previous = KernelParams.offset(f);
        }
        Matcher size = Pattern.compile("static_assert\\(sizeof\\(Params\\) == (\\d+)").matcher(cu);
        assertTrue(size.find(), "the .cu pins sizeof(Params)");
        assertEquals(Integer.parseInt(size.group(1)), KernelParams.SIZE);
        // Kernel parameters are limited to 4 KB on every architecture the build targets.
        assertTrue(KernelParams.SIZE <= 4096);
    }

    @Test
    void constantsMatchTheKernels() throws IOException {
        String cu = kernels();
        Map<String, Integer> expected = Map.ofEntries(Map.entry("TILE_Q", LaunchGeometry.TILE_Q),
                Map.entry("MAX_TILE_K", LaunchGeometry.MAX_TILE_K), Map.entry("SMEM_ALIGN", SharedLayout.ALIGN),
                Map.entry("FP32_THREADS", LaunchGeometry.FP32_THREADS), Map.entry("MMA_THREADS", LaunchGeometry.MMA_THREADS),
                Map.entry("MERGE_THREADS", LaunchGeometry.MERGE_THREADS), Map.entry("UNIT_INTS", WorkPlan.UNIT_INTS),
                Map.entry("SPLIT_INTS", WorkPlan.SPLIT_INTS), Map.entry("CONVERT_THREADS", LaunchGeometry.CONVERT_THREADS),
                Map.entry("MMA_BLOCK_M", MmaSpecialisation.BLOCK_M),
                Map.entry("MMA_ROW_PAD_BYTES", SharedLayout.MMA_ROW_PAD_BYTES),
                Map.entry("MMA_MAX_STAGES", MmaSpecialisation.MAX_STAGES),
                Map.entry("BWD_THREADS", BackwardGeometry.THREADS));
        for (Map.Entry<String, Integer> e : expected.entrySet()) {
            Matcher m = Pattern.compile("#define " + e.getKey() + " (\\d+)").matcher(cu);
            assertTrue(m.find(), "#define " + e.getKey() + " in the .cu");
            assertEquals(e.getValue(), Integer.parseInt(m.group(1)), e.getKey());
        }
        java.util.Set<String> kernels = new java.util.TreeSet<>();
        for (Precision p : Precision.values()) {
            kernels.add(LaunchGeometry.kernelName(p));
            if (LaunchGeometry.sixteenBitKernelName(p) != null) {
                kernels.add(LaunchGeometry.sixteenBitKernelName(p));
            }
        }
        kernels.add(LaunchGeometry.MERGE_KERNEL);
        kernels.add(BackwardGeometry.DELTA_KERNEL);
        kernels.add(BackwardGeometry.DQ_KERNEL);
        kernels.add(BackwardGeometry.DKDV_KERNEL);
        for (MmaSpecialisation spec : MmaSpecialisation.ALL) {
            if (spec.convertKernel() != null) {
                kernels.add(spec.convertKernel());
            }
        }
        for (String kernel : kernels) {
            assertTrue(Pattern.compile("extern \"C\" __global__ void __launch_bounds__\\([^)]*\\) " + kernel
                    + "\\(const Params p\\)").matcher(cu).find(), kernel + " takes the one Params argument");
        }
    }

    /** The causal rule is written once in the kernels, as in TokenMask.causalKeyEnd. */
    @Test
    void theCausalRuleIsWrittenOnce() throws IOException {
        String cu = kernels();
        assertEquals(0, count(cu, "Nk - p.Nq") + count(cu, "Nk - Nq)") + count(cu, "(long long)Nk - "),
                "no kernel derives the causal shift from the lengths: it is the problem's (Params.causalShift)");
        assertEquals(1, count(cu, "__device__ __forceinline__ int causal_key_end("));
        assertEquals(1, count(cu, "causal_key_end(i, p.causalShift, p.Nk)"), "one call, with the problem's shift");
    }

    private static int count(String s, String what) {
        int n = 0;
        for (int at = s.indexOf(what); at >= 0; at = s.indexOf(what, at + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void oneCallFillsEveryFieldWithItsValue() {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(8).kvHeads(2).queryLength(300).keyLength(500)
                .headDim(40).valueDim(24).causal(true).precision(Precision.BF16).keyLengths(500, 420).build();
        BlockLayout l = Patterns.parse("bigbird(block=32, window=3, global=2, random=1)").layout(300, 500, 8);
        WorkPlan w = WorkPlan.of(l, 4);
        LaunchGeometry g = LaunchGeometry.of(p, l, w, 227 * 1024);
        KernelParams.PlanBuffers plan = new KernelParams.PlanBuffers(0x1000, 0x2000, 0x3000, 0x4000, 0, 0x6000, 0x7000);
        DeviceTensor q = DeviceTensor.of(0x10000, TensorLayout.BSHD, 8, 300, 40);
        DeviceTensor k = DeviceTensor.of(0x20000, TensorLayout.BHSD, 2, 500, 40);
        DeviceTensor v = DeviceTensor.of(0x30000, TensorLayout.BHSD, 2, 500, 24);
        DeviceTensor o = DeviceTensor.of(0x40000, TensorLayout.BSHD, 8, 300, 24);
        KernelParams kp = KernelParams.of(p, true, l, w, g, plan, q, k, v, o, 0x50000, KernelParams.Inputs16.NONE);
        byte[] bytes = kp.bytes();
        assertEquals(KernelParams.SIZE, bytes.length);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);

        Map<Field, Long> longs = new LinkedHashMap<>();
        longs.put(Field.Q, 0x10000L);
        longs.put(Field.K, 0x20000L);
        longs.put(Field.V, 0x30000L);
        longs.put(Field.OUT, 0x40000L);
        longs.put(Field.LSE, 0x50000L);
        longs.put(Field.UNITS, 0x1000L);
        longs.put(Field.KEY_BLOCKS, 0x2000L);
        longs.put(Field.SPLITS, 0x3000L);
        longs.put(Field.KEY_LENS, 0x4000L);
        longs.put(Field.QUERY_LENS, 0L);
        longs.put(Field.WS_O, 0x6000L);
        longs.put(Field.WS_LSE, 0x7000L);
        longs.put(Field.QSB, 300L * 8 * 40);
        longs.put(Field.QSH, 40L);
        longs.put(Field.QSN, 8L * 40);
        longs.put(Field.KSB, 2L * 500 * 40);
        longs.put(Field.KSH, 500L * 40);
        longs.put(Field.KSN, 40L);
        longs.put(Field.VSB, 2L * 500 * 24);
        longs.put(Field.VSH, 500L * 24);
        longs.put(Field.VSN, 24L);
        longs.put(Field.OSB, 300L * 8 * 24);
        longs.put(Field.OSH, 24L);
        longs.put(Field.OSN, 8L * 24);
        longs.put(Field.Q16, 0L);
        longs.put(Field.K16, 0L);
        longs.put(Field.V16, 0L);
        longs.put(Field.CAUSAL_SHIFT, 200L);   // bottom-right: Nk - Nq
        // A forward launch leaves every backward field 0.
        for (Field f : new Field[] {Field.D_OUT, Field.GRAD_Q, Field.GRAD_K, Field.GRAD_V, Field.DELTA, Field.COL_STARTS,
            Field.COL_QUERY_BLOCKS, Field.GSB, Field.GSH, Field.GSN, Field.DQSB, Field.DQSH, Field.DQSN, Field.DKSB,
            Field.DKSH, Field.DKSN, Field.DVSB, Field.DVSH, Field.DVSN}) {
            longs.put(f, 0L);
        }
        Map<Field, Integer> ints = new LinkedHashMap<>();
        ints.put(Field.HQ, 8);
        ints.put(Field.GROUP, 4);
        ints.put(Field.NQ, 300);
        ints.put(Field.NK, 500);
        ints.put(Field.D, 40);
        ints.put(Field.DV, 24);
        ints.put(Field.Q_BLOCK, 32);
        ints.put(Field.K_BLOCK, 32);
        ints.put(Field.UNITS_PER_LAYOUT, w.unitsPerLayout());
        ints.put(Field.SPLITS_PER_LAYOUT, w.splitsPerLayout());
        ints.put(Field.SLOTS_PER_LAYOUT, w.slotsPerLayout());
        ints.put(Field.HEAD_LAYOUTS, 8);
        ints.put(Field.TILES_PER_BLOCK, 1);
        ints.put(Field.TILE_K, 64);
        ints.put(Field.CAUSAL, 1);
        SharedLayout s = g.shared();
        ints.put(Field.D_PAD, 48);
        ints.put(Field.DV_PAD, 32);
        ints.put(Field.LDQ, 56);
        ints.put(Field.LDV, 40);
        ints.put(Field.LDP, 72);
        ints.put(Field.LDS, 68);
        ints.put(Field.LDO, 36);
        ints.put(Field.SM_Q, s.q());
        ints.put(Field.SM_K, s.k());
        ints.put(Field.SM_V, s.v());
        ints.put(Field.SM_S, s.s());
        ints.put(Field.SM_P, s.p());
        ints.put(Field.SM_O, s.o());
        ints.put(Field.SM_TMP, s.tmp());
        ints.put(Field.SM_M, s.m());
        ints.put(Field.SM_L, s.l());
        ints.put(Field.SM_SEEN, s.seen());
        ints.put(Field.SM_BAD_KEY, s.badKey());
        ints.put(Field.SM_BYTES, g.sharedBytes());
        ints.put(Field.BATCH, 2);
        ints.put(Field.STAGES, 1);
        ints.put(Field.SM_STAGE, -1);
        ints.put(Field.KEY_BLOCK_COUNT, 0);
        ints.put(Field.KEY_TILES_PER_BLOCK, 0);
        ints.put(Field.BWD_ROWS, 0);
        assertEquals(Field.values().length, longs.size() + ints.size() + 2, "every field is checked");
        for (Map.Entry<Field, Long> e : longs.entrySet()) {
            assertEquals(e.getValue(), b.getLong(KernelParams.offset(e.getKey())), e.getKey().cName);
            assertEquals(e.getValue(), kp.getLong(e.getKey()), e.getKey().cName);
        }
        for (Map.Entry<Field, Integer> e : ints.entrySet()) {
            assertEquals(e.getValue(), b.getInt(KernelParams.offset(e.getKey())), e.getKey().cName);
        }
        assertEquals(p.scale(), b.getFloat(KernelParams.offset(Field.SCALE)));
        assertEquals((float) (p.scale() / Math.log(2)), b.getFloat(KernelParams.offset(Field.SCALE_LOG2)));
        assertTrue(w.splitsPerLayout() > 0, "the case splits rows");
        // Distinct buffer offsets: the carve-up reached the struct, not a default.
        assertTrue(s.q() < s.k() && s.k() < s.v() && s.v() < s.s() && s.s() < s.p() && s.p() < s.o());
    }

    /**
     * A causal problem cut into key shards: each shard's problem carries its own causal shift, the
     * backend accepts it (it declares CAUSAL_SHIFT), and the shift reaches the kernels' mask
     * ({@code Params.causalShift}, read by {@code causal_key_end}) unchanged.
     */
    @Test
    void eachKeyShardOfACausalProblemCarriesItsShiftToTheKernel() {
        AttentionProblem p = AttentionProblem.builder().batch(1).heads(4).queryLength(200).keyLength(520).headDim(32)
                .causal(true).build();
        BlockLayout l = Patterns.parse("bigbird(block=32, window=3, global=1, random=1)").layout(200, 520, 4);
        dev.starling.api.plan.KeyShards shards = dev.starling.api.plan.KeyShards.at(p, l, 6, 11);
        assertEquals(3, shards.count());
        java.util.Set<Long> shifts = new java.util.TreeSet<>();
        for (int s = 0; s < shards.count(); s++) {
            AttentionProblem sp = shards.problem(s);
            BlockLayout sl = shards.layout(s);
            assertTrue(new CudaBackend().capabilities().unsupported(sp, true).isEmpty(),
                    "shard " + s + " " + sp + ": " + new CudaBackend().capabilities().unsupported(sp, true));
            WorkPlan w = WorkPlan.of(sl, SplitRows.OFF);
            LaunchGeometry g = LaunchGeometry.of(sp, sl, w, 227 * 1024);
            KernelParams.PlanBuffers plan = new KernelParams.PlanBuffers(0x1000, 0x2000, 0, 0, 0, 0, 0);
            DeviceTensor q = DeviceTensor.of(0x10000, TensorLayout.BHSD, 4, 200, 32);
            DeviceTensor k = DeviceTensor.of(0x20000, TensorLayout.BHSD, 4, sp.keyLength(), 32);
            DeviceTensor o = DeviceTensor.of(0x40000, TensorLayout.BHSD, 4, 200, 32);
            KernelParams kp = KernelParams.of(sp, true, sl, w, g, plan, q, k, k, o, 0x50000, KernelParams.Inputs16.NONE);
            assertEquals(sp.causalShift(), kp.getLong(Field.CAUSAL_SHIFT), "shard " + s);
            assertEquals(1, ByteBuffer.wrap(kp.bytes()).order(ByteOrder.LITTLE_ENDIAN).getInt(KernelParams.offset(Field.CAUSAL)));
            shifts.add(sp.causalShift());
        }
        // Shard s starts at key firstKey(s): its rows may read keys j' <= i + (Nk - Nq) - firstKey(s).
        assertEquals(java.util.Set.of(320L, 320L - 6 * 32, 320L - 11 * 32), shifts);
    }

    /** An mma launch: 16-bit inputs, stages and the stage stride reach the struct; the float32 pointers may be 0. */
    @Test
    void anMmaCallFillsTheSixteenBitInputsAndStages() {
        AttentionProblem p = AttentionProblem.builder().batch(3).heads(4).length(640).headDim(128)
                .precision(Precision.FP16).scale(-0.25f).build();
        BlockLayout l = Patterns.parse("bigbird(block=64, window=3, global=2, random=3)").layout(640, 640, 4);
        WorkPlan w = WorkPlan.of(l, SplitRows.OFF);
        LaunchGeometry g = LaunchGeometry.of(p, l, w, new LaunchGeometry.DeviceLimits(227 * 1024, 228 * 1024),
                KernelFamily.MMA, 0);
        assertEquals("starling_mma_fp16_d128", g.kernel());
        KernelParams.PlanBuffers plan = new KernelParams.PlanBuffers(0x1000, 0x2000, 0x3000, 0, 0, 0, 0);
        DeviceTensor q = DeviceTensor.of(0, TensorLayout.BHSD, 4, 640, 128);
        DeviceTensor o = DeviceTensor.of(0x40000, TensorLayout.BHSD, 4, 640, 128);
        KernelParams kp = KernelParams.of(p, false, l, w, g, plan, q, q, q, o, 0,
                new KernelParams.Inputs16(0x10000, 0x20000, 0x30000));
        assertEquals(0L, kp.getLong(Field.Q));
        assertEquals(0x10000L, kp.getLong(Field.Q16));
        assertEquals(0x20000L, kp.getLong(Field.K16));
        assertEquals(0x30000L, kp.getLong(Field.V16));
        assertEquals(640L * 128, kp.getLong(Field.QSH), "16-bit inputs keep the element strides");
        assertEquals(3, kp.getInt(Field.BATCH));
        assertEquals(g.shared().stages(), kp.getInt(Field.STAGES));
        assertEquals(g.shared().stageBytes(), kp.getInt(Field.SM_STAGE));
        assertEquals(g.shared().k(), kp.getInt(Field.SM_K));
        assertEquals(g.shared().v(), kp.getInt(Field.SM_V));
        assertEquals(g.sharedBytes(), kp.getInt(Field.SM_BYTES));
        assertEquals(-0.25f * 1.442695f, kp.getFloat(Field.SCALE_LOG2), 1e-6f, "negative scales keep their sign");
    }
}
