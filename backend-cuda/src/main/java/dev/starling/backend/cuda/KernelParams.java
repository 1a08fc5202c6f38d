package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.WorkPlan;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The one argument of every kernel: {@code struct Params} of {@code sparse_attention.cu}, written
 * as little-endian bytes and passed by value. This class is the one place that fills it
 * ({@link #of}); adding a kernel argument touches the struct and {@link Field}, nothing else.
 *
 * <p>Offsets follow C's rules for the struct: each field at the next multiple of its own size
 * (8 for pointers and {@code long long}, 4 for {@code int} and {@code float}), the total rounded
 * up to 8. The .cu pins every offset with a {@code static_assert(offsetof(...))}, and a test checks
 * that those numbers are the ones computed here.
 */
final class KernelParams {

    /** C type of a field. */
    enum Type {
        /** A device pointer ({@code const float*}, {@code int*}, ...): 8 bytes, 0 for {@code nullptr}. */
        POINTER(8),
        /** {@code long long}. */
        I64(8),
        /** {@code int}. */
        I32(4),
        /** {@code float}. */
        F32(4);

        final int bytes;

        Type(int bytes) {
            this.bytes = bytes;
        }
    }

    /** The struct's fields in declaration order, each with its C name (see {@code struct Params}). */
    enum Field {
        Q("q", "const float*", "[B, Hq, Nq, D] in any layout"),
        K("k", "const float*", "[B, Hkv, Nk, D]"),
        V("v", "const float*", "[B, Hkv, Nk, Dv]"),
        OUT("out", "float*", "[B, Hq, Nq, Dv]"),
        LSE("lse", "float*", "[B, Hq, Nq] or nullptr"),
        UNITS("units", "const int*", "WorkPlan.packUnits(): headLayouts x unitsPerLayout x UNIT_INTS"),
        KEY_BLOCKS("keyBlocks", "const int*", "WorkPlan.packKeyBlocks(): every head layout's key blocks, concatenated"),
        SPLITS("splits", "const int*", "WorkPlan.packSplits(): headLayouts x splitsPerLayout x SPLIT_INTS"),
        KEY_LENS("keyLens", "const int*", "[B] or nullptr (every key valid)"),
        QUERY_LENS("queryLens", "const int*", "[B] or nullptr (every query row valid)"),
        WS_O("wsO", "float*", "split-row workspace: [B*Hq, slotsPerLayout, qBlock, Dv] (nullptr: no splits)"),
        WS_LSE("wsLse", "float*", "[B*Hq, slotsPerLayout, qBlock]"),
        QSB("qsb", "long long"),
        QSH("qsh", "long long"),
        QSN("qsn", "long long"),
        KSB("ksb", "long long"),
        KSH("ksh", "long long"),
        KSN("ksn", "long long"),
        VSB("vsb", "long long"),
        VSH("vsh", "long long"),
        VSN("vsn", "long long"),
        OSB("osb", "long long"),
        OSH("osh", "long long"),
        OSN("osn", "long long"),
        HQ("Hq", "int"),
        GROUP("group", "int"),
        NQ("Nq", "int"),
        NK("Nk", "int"),
        D("D", "int"),
        DV("Dv", "int"),
        Q_BLOCK("qBlock", "int"),
        K_BLOCK("kBlock", "int"),
        UNITS_PER_LAYOUT("unitsPerLayout", "int"),
        SPLITS_PER_LAYOUT("splitsPerLayout", "int"),
        SLOTS_PER_LAYOUT("slotsPerLayout", "int"),
        HEAD_LAYOUTS("headLayouts", "int"),
        TILES_PER_BLOCK("tilesPerBlock", "int"),
        TILE_K("tileK", "int"),
        CAUSAL("causal", "int"),
        SCALE("scale", "float"),
        D_PAD("dPad", "int", "", "Shared memory, computed by SharedLayout.java: padded dims, leading dimensions (elements), byte offsets of each buffer from the aligned base, and the total dynamic bytes launched."),
        DV_PAD("dvPad", "int"),
        LDQ("ldq", "int"),
        LDV("ldv", "int"),
        LDP("ldp", "int"),
        LDS("lds", "int"),
        LDO("ldo", "int"),
        SM_Q("smQ", "int"),
        SM_K("smK", "int"),
        SM_V("smV", "int"),
        SM_S("smS", "int"),
        SM_P("smP", "int"),
        SM_O("smO", "int"),
        SM_TMP("smTmp", "int"),
        SM_M("smM", "int"),
        SM_L("smL", "int"),
        SM_SEEN("smSeen", "int"),
        SM_BAD_KEY("smBadKey", "int"),
        SM_BYTES("smBytes", "int"),
        Q16("q16", "void*", "", "16-bit (bf16 or fp16) inputs, same strides as q, k, v: read by the 16-bit mma kernels and starling_*_in16; written by starling_convert_* from q, k, v (the plan's copies), or the caller's own 16-bit tensors (then q, k, v are nullptr). nullptr when not used."),
        K16("k16", "void*"),
        V16("v16", "void*"),
        BATCH("batch", "int", "B"),
        SCALE_LOG2("scaleLog2", "float", "scale * log2(e): the mma kernels' exp2 argument is score * scaleLog2 - max"),
        STAGES("stages", "int", "cp.async stages of K/V tiles (mma kernels: 2 or 3; others 1)"),
        SM_STAGE("smStage", "int", "bytes from one stage of K (or of V) to the next"),
        D_OUT("dout", "const float*", "dO [B, Hq, Nq, Dv]", "Backward (starling_bwd_*; nullptr and 0 in forward launches). dO, dQ, dK and dV bring their own strides; delta is the plan's workspace of D_i = sum_d dO_id O_id, NaN for a row that contributes nothing."),
        GRAD_Q("dq", "float*", "[B, Hq, Nq, D]"),
        GRAD_K("dk", "float*", "[B, Hkv, Nk, D]"),
        GRAD_V("dv", "float*", "[B, Hkv, Nk, Dv]"),
        DELTA("delta", "float*", "[B, Hq, Nq]"),
        COL_STARTS("colStarts", "const int*", "BackwardColumns.packStarts(): headLayouts x (keyBlockCount + 1) indices into colQueryBlocks"),
        COL_QUERY_BLOCKS("colQueryBlocks", "const int*", "BackwardColumns.packQueryBlocks(): every head layout's columns, concatenated"),
        GSB("gsb", "long long"),
        GSH("gsh", "long long"),
        GSN("gsn", "long long"),
        DQSB("dqsb", "long long"),
        DQSH("dqsh", "long long"),
        DQSN("dqsn", "long long"),
        DKSB("dksb", "long long"),
        DKSH("dksh", "long long"),
        DKSN("dksn", "long long"),
        DVSB("dvsb", "long long"),
        DVSH("dvsh", "long long"),
        DVSN("dvsn", "long long"),
        KEY_BLOCK_COUNT("keyBlockCount", "int", "key blocks of the layout (columns per head layout)"),
        KEY_TILES_PER_BLOCK("keyTilesPerBlock", "int", "64-key tiles per key block: ceil(kBlock / 64)"),
        BWD_ROWS("bwdRows", "int", "query rows per chunk of starling_bwd_dkdv (64, or 32 or 16 when 64 do not fit)"),
        CAUSAL_SHIFT("causalShift", "long long", "AttentionProblem.causalShift(): row i may read keys j <= i + causalShift");

        final String cName;
        final Type type;
        /** The C declaration's type, e.g. {@code const float*}. */
        final String cType;
        /** The comment after the field in params.cuh, or empty. */
        final String note;
        /** The comment lines before the field in params.cuh (a group's heading), or empty. */
        final String section;

        Field(String cName, String cType) {
            this(cName, cType, "", "");
        }

        Field(String cName, String cType, String note) {
            this(cName, cType, note, "");
        }

        Field(String cName, String cType, String note, String section) {
            this.cName = cName;
            this.cType = cType;
            this.type = cType.endsWith("*") ? Type.POINTER : switch (cType) {
                case "long long" -> Type.I64;
                case "int" -> Type.I32;
                case "float" -> Type.F32;
                default -> throw new IllegalArgumentException("no kernel parameter type " + cType);
            };
            this.note = note;
            this.section = section;
        }
    }

    /**
     * The text of {@code params.cuh}: {@code struct Params} with these fields in this order, then a
     * {@code static_assert} per field offset and one for the size, so nvcc checks that the C struct is
     * laid out as {@link #offset} says. The build writes it before compiling the kernels
     * ({@link ParamsHeader}); nothing else declares the struct.
     *
     * @return the header
     */
    static String header() {
        StringBuilder h = new StringBuilder();
        h.append("// Generated by the build from dev.starling.backend.cuda.KernelParams.Field (ParamsHeader): do not edit.\n")
                .append("// The one kernel argument. Strides are in elements: (batch, head, row); features are contiguous.\n")
                .append("#pragma once\n\nstruct Params {\n");
        for (Field f : Field.values()) {
            if (!f.section.isEmpty()) {
                h.append("    // ").append(f.section).append('\n');
            }
            String decl = "    " + f.cType + " " + f.cName + ";";
            h.append(f.note.isEmpty() ? decl : String.format(java.util.Locale.ROOT, "%-28s // %s", decl, f.note)).append('\n');
        }
        h.append("};\n\n");
        for (Field f : Field.values()) {
            h.append("static_assert(offsetof(Params, ").append(f.cName).append(") == ").append(offset(f))
                    .append(", \"Params layout\");\n");
        }
        h.append("static_assert(sizeof(Params) == ").append(SIZE).append(", \"Params layout\");\n");
        return h.toString();
    }

    private static final int[] OFFSETS = new int[Field.values().length];
    /** {@code sizeof(Params)}. */
    static final int SIZE;

    static {
        int at = 0;
        for (Field f : Field.values()) {
            at = roundUp(at, f.type.bytes);
            OFFSETS[f.ordinal()] = at;
            at += f.type.bytes;
        }
        SIZE = roundUp(at, 8);
    }

    /**
     * Device addresses of what a plan uploads once (0 for what it does not have).
     *
     * @param units {@link WorkPlan#packUnits()}
     * @param keyBlocks {@link WorkPlan#packKeyBlocks()}
     * @param splits {@link WorkPlan#packSplits()}
     * @param keyLens {@code [B]} key lengths, or 0
     * @param queryLens {@code [B]} query lengths, or 0
     * @param wsO workspace of partial outputs, or 0 when nothing is split
     * @param wsLse workspace of partial LSEs, or 0 when nothing is split
     */
    record PlanBuffers(long units, long keyBlocks, long splits, long keyLens, long queryLens, long wsO, long wsLse) {
    }

    private final ByteBuffer buffer = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
    private final boolean[] written = new boolean[Field.values().length];

    private KernelParams() {
    }

    /** @return byte offset of {@code field} in the struct */
    static int offset(Field field) {
        return OFFSETS[field.ordinal()];
    }

    /** {@code log2(e)}: the mma kernels compute {@code exp2(s · scale · log2(e) − max)}. */
    static final double LOG2_E = 1.0 / Math.log(2.0);

    /**
     * 16-bit inputs of one call: the plan's converted copies or the caller's own tensors (same
     * strides as the float32 tensors of the call); 0 where there are none.
     *
     * @param q address of the 16-bit queries, or 0
     * @param k address of the 16-bit keys, or 0
     * @param v address of the 16-bit values, or 0
     */
    record Inputs16(long q, long k, long v) {
        /** No 16-bit inputs. */
        static final Inputs16 NONE = new Inputs16(0, 0, 0);
    }

    /**
     * What a backward launch adds to the struct ({@code starling_bwd_*}); {@link #NONE} in forward launches.
     *
     * @param dOut {@code dO [B, Hq, Nq, Dv]} on the device
     * @param dq {@code dQ [B, Hq, Nq, D]}
     * @param dk {@code dK [B, Hkv, Nk, D]}
     * @param dv {@code dV [B, Hkv, Nk, Dv]}
     * @param delta address of the plan's {@code D} workspace {@code [B, Hq, Nq]}
     * @param colStarts address of {@link BackwardColumns#packStarts}
     * @param colQueryBlocks address of {@link BackwardColumns#packQueryBlocks}
     * @param keyBlockCount key blocks of the layout
     * @param keyTilesPerBlock 64-key tiles per key block
     * @param rows query rows per chunk of {@code starling_bwd_dkdv}
     */
    record Backward(DeviceTensor dOut, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, long delta, long colStarts,
                    long colQueryBlocks, int keyBlockCount, int keyTilesPerBlock, int rows) {
        private static final DeviceTensor ZERO = new DeviceTensor(0, 0, 0, 0);
        /** A forward launch: every backward field 0. */
        static final Backward NONE = new Backward(ZERO, ZERO, ZERO, ZERO, 0, 0, 0, 0, 0, 0);
    }

    /**
     * Fills every field for one call.
     *
     * @param problem shapes, scale, GQA group
     * @param causal whether the causal rule applies (the token mask's resolved flag)
     * @param layout block sizes
     * @param work the units and split rows uploaded as {@code plan}
     * @param geometry tile sizes and the shared-memory carve-up
     * @param plan the plan's device buffers
     * @param q queries {@code [B, Hq, Nq, D]} on the device (address 0 when the call brings only 16-bit inputs;
     *        the strides are used either way)
     * @param k keys {@code [B, Hkv, Nk, D]}
     * @param v values {@code [B, Hkv, Nk, Dv]}
     * @param out output {@code [B, Hq, Nq, Dv]}
     * @param lse address of {@code LSE [B, Hq, Nq]}, or 0 when not asked for
     * @param inputs16 the call's 16-bit inputs, or {@link Inputs16#NONE}
     * @return the filled struct
     */
    static KernelParams of(AttentionProblem problem, boolean causal, BlockLayout layout, WorkPlan work,
                           LaunchGeometry geometry, PlanBuffers plan, DeviceTensor q, DeviceTensor k, DeviceTensor v,
                           DeviceTensor out, long lse, Inputs16 inputs16) {
        return fill(problem, causal, layout, work, geometry.tilesPerBlock(), geometry.tileK(), geometry.shared(), plan,
                q, k, v, out, lse, inputs16, Backward.NONE);
    }

    /**
     * Fills every field for one backward launch ({@code starling_bwd_delta}, {@code _dq} or {@code _dkdv}).
     *
     * @param problem shapes, scale, GQA group
     * @param causal whether the causal rule applies (the token mask's resolved flag)
     * @param layout block sizes
     * @param work the whole-row work plan uploaded as {@code plan} (no split rows)
     * @param geometry the backward launches
     * @param shared the carve-up of the kernel launched ({@link BackwardGeometry#dqShared()} or
     *        {@link BackwardGeometry#dkdvShared()})
     * @param plan the plan's device buffers for the backward pass (whole-row units and key blocks)
     * @param q queries on the device
     * @param k keys
     * @param v values
     * @param out the forward's output
     * @param lse address of the forward's LSE
     * @param backward the gradients, {@code dO}, the {@code D} workspace and the packed columns
     * @return the filled struct
     */
    static KernelParams backward(AttentionProblem problem, boolean causal, BlockLayout layout, WorkPlan work,
                                 BackwardGeometry geometry, SharedLayout shared, PlanBuffers plan, DeviceTensor q,
                                 DeviceTensor k, DeviceTensor v, DeviceTensor out, long lse, Backward backward) {
        return fill(problem, causal, layout, work, geometry.tilesPerBlock(), geometry.tileK(), shared, plan, q, k, v, out,
                lse, Inputs16.NONE, backward);
    }

    private static KernelParams fill(AttentionProblem problem, boolean causal, BlockLayout layout, WorkPlan work,
                                     int tilesPerBlock, int tileK, SharedLayout s, PlanBuffers plan, DeviceTensor q,
                                     DeviceTensor k, DeviceTensor v, DeviceTensor out, long lse, Inputs16 inputs16,
                                     Backward bwd) {
        KernelParams p = new KernelParams();
        p.put(Field.Q, q.address()).put(Field.K, k.address()).put(Field.V, v.address()).put(Field.OUT, out.address())
                .put(Field.LSE, lse);
        p.put(Field.UNITS, plan.units()).put(Field.KEY_BLOCKS, plan.keyBlocks()).put(Field.SPLITS, plan.splits())
                .put(Field.KEY_LENS, plan.keyLens()).put(Field.QUERY_LENS, plan.queryLens())
                .put(Field.WS_O, plan.wsO()).put(Field.WS_LSE, plan.wsLse());
        p.put(Field.QSB, q.batchStride()).put(Field.QSH, q.headStride()).put(Field.QSN, q.rowStride());
        p.put(Field.KSB, k.batchStride()).put(Field.KSH, k.headStride()).put(Field.KSN, k.rowStride());
        p.put(Field.VSB, v.batchStride()).put(Field.VSH, v.headStride()).put(Field.VSN, v.rowStride());
        p.put(Field.OSB, out.batchStride()).put(Field.OSH, out.headStride()).put(Field.OSN, out.rowStride());
        p.put(Field.HQ, problem.queryHeads()).put(Field.GROUP, problem.groupSize())
                .put(Field.NQ, problem.queryLength()).put(Field.NK, problem.keyLength())
                .put(Field.D, problem.headDim()).put(Field.DV, problem.valueDim());
        p.put(Field.Q_BLOCK, layout.queryBlock()).put(Field.K_BLOCK, layout.keyBlock());
        p.put(Field.UNITS_PER_LAYOUT, work.unitsPerLayout()).put(Field.SPLITS_PER_LAYOUT, work.splitsPerLayout())
                .put(Field.SLOTS_PER_LAYOUT, work.slotsPerLayout()).put(Field.HEAD_LAYOUTS, work.headLayouts());
        p.put(Field.TILES_PER_BLOCK, tilesPerBlock).put(Field.TILE_K, tileK)
                .put(Field.CAUSAL, causal ? 1 : 0).put(Field.SCALE, problem.scale())
                .put(Field.CAUSAL_SHIFT, problem.causalShift());
        p.put(Field.D_PAD, s.dPad()).put(Field.DV_PAD, s.dvPad()).put(Field.LDQ, s.ldq()).put(Field.LDV, s.ldv())
                .put(Field.LDP, s.ldp()).put(Field.LDS, s.lds()).put(Field.LDO, s.ldo());
        p.put(Field.SM_Q, s.q()).put(Field.SM_K, s.k()).put(Field.SM_V, s.v()).put(Field.SM_S, s.s())
                .put(Field.SM_P, s.p()).put(Field.SM_O, s.o()).put(Field.SM_TMP, s.tmp()).put(Field.SM_M, s.m())
                .put(Field.SM_L, s.l()).put(Field.SM_SEEN, s.seen()).put(Field.SM_BAD_KEY, s.badKey())
                .put(Field.SM_BYTES, s.bytes());
        p.put(Field.Q16, inputs16.q()).put(Field.K16, inputs16.k()).put(Field.V16, inputs16.v())
                .put(Field.BATCH, problem.batch()).put(Field.SCALE_LOG2, (float) (problem.scale() * LOG2_E))
                .put(Field.STAGES, s.stages()).put(Field.SM_STAGE, s.stageBytes());
        p.put(Field.D_OUT, bwd.dOut().address()).put(Field.GRAD_Q, bwd.dq().address()).put(Field.GRAD_K, bwd.dk().address())
                .put(Field.GRAD_V, bwd.dv().address()).put(Field.DELTA, bwd.delta()).put(Field.COL_STARTS, bwd.colStarts())
                .put(Field.COL_QUERY_BLOCKS, bwd.colQueryBlocks());
        p.put(Field.GSB, bwd.dOut().batchStride()).put(Field.GSH, bwd.dOut().headStride())
                .put(Field.GSN, bwd.dOut().rowStride());
        p.put(Field.DQSB, bwd.dq().batchStride()).put(Field.DQSH, bwd.dq().headStride()).put(Field.DQSN, bwd.dq().rowStride());
        p.put(Field.DKSB, bwd.dk().batchStride()).put(Field.DKSH, bwd.dk().headStride()).put(Field.DKSN, bwd.dk().rowStride());
        p.put(Field.DVSB, bwd.dv().batchStride()).put(Field.DVSH, bwd.dv().headStride()).put(Field.DVSN, bwd.dv().rowStride());
        p.put(Field.KEY_BLOCK_COUNT, bwd.keyBlockCount()).put(Field.KEY_TILES_PER_BLOCK, bwd.keyTilesPerBlock())
                .put(Field.BWD_ROWS, bwd.rows());
        for (Field f : Field.values()) {
            if (!p.written[f.ordinal()]) {
                throw new IllegalStateException("kernel parameter " + f.cName + " was not set");
            }
        }
        return p;
    }

    private KernelParams put(Field f, long value) {
        switch (f.type) {
            case POINTER, I64 -> buffer.putLong(offset(f), value);
            case I32 -> buffer.putInt(offset(f), Math.toIntExact(value));
            case F32 -> throw new IllegalArgumentException(f.cName + " is a float");
        }
        return mark(f);
    }

    private KernelParams put(Field f, float value) {
        if (f.type != Type.F32) {
            throw new IllegalArgumentException(f.cName + " is not a float");
        }
        buffer.putFloat(offset(f), value);
        return mark(f);
    }

    private KernelParams mark(Field f) {
        if (written[f.ordinal()]) {
            throw new IllegalStateException("kernel parameter " + f.cName + " set twice");
        }
        written[f.ordinal()] = true;
        return this;
    }

    /** @return a copy of the struct's bytes, {@link #SIZE} of them, little-endian */
    byte[] bytes() {
        return Arrays.copyOf(buffer.array(), SIZE);
    }

    /** @return a pointer or {@code long long} field, as written */
    long getLong(Field f) {
        return buffer.getLong(offset(f));
    }

    /** @return an {@code int} field, as written */
    int getInt(Field f) {
        return buffer.getInt(offset(f));
    }

    /** @return a {@code float} field, as written */
    float getFloat(Field f) {
        return buffer.getFloat(offset(f));
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }
}
