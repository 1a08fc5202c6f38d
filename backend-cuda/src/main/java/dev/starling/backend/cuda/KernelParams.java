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
        Q("q", Type.POINTER), K("k", Type.POINTER), V("v", Type.POINTER), OUT("out", Type.POINTER),
        LSE("lse", Type.POINTER), UNITS("units", Type.POINTER), KEY_BLOCKS("keyBlocks", Type.POINTER),
        SPLITS("splits", Type.POINTER), KEY_LENS("keyLens", Type.POINTER), QUERY_LENS("queryLens", Type.POINTER),
        WS_O("wsO", Type.POINTER), WS_LSE("wsLse", Type.POINTER),
        QSB("qsb", Type.I64), QSH("qsh", Type.I64), QSN("qsn", Type.I64),
        KSB("ksb", Type.I64), KSH("ksh", Type.I64), KSN("ksn", Type.I64),
        VSB("vsb", Type.I64), VSH("vsh", Type.I64), VSN("vsn", Type.I64),
        OSB("osb", Type.I64), OSH("osh", Type.I64), OSN("osn", Type.I64),
        HQ("Hq", Type.I32), GROUP("group", Type.I32), NQ("Nq", Type.I32), NK("Nk", Type.I32), D("D", Type.I32),
        DV("Dv", Type.I32), Q_BLOCK("qBlock", Type.I32), K_BLOCK("kBlock", Type.I32),
        UNITS_PER_LAYOUT("unitsPerLayout", Type.I32), SPLITS_PER_LAYOUT("splitsPerLayout", Type.I32),
        SLOTS_PER_LAYOUT("slotsPerLayout", Type.I32), HEAD_LAYOUTS("headLayouts", Type.I32),
        TILES_PER_BLOCK("tilesPerBlock", Type.I32), TILE_K("tileK", Type.I32), CAUSAL("causal", Type.I32),
        SCALE("scale", Type.F32),
        D_PAD("dPad", Type.I32), DV_PAD("dvPad", Type.I32), LDQ("ldq", Type.I32), LDV("ldv", Type.I32),
        LDP("ldp", Type.I32), LDS("lds", Type.I32), LDO("ldo", Type.I32),
        SM_Q("smQ", Type.I32), SM_K("smK", Type.I32), SM_V("smV", Type.I32), SM_S("smS", Type.I32),
        SM_P("smP", Type.I32), SM_O("smO", Type.I32), SM_TMP("smTmp", Type.I32), SM_M("smM", Type.I32),
        SM_L("smL", Type.I32), SM_SEEN("smSeen", Type.I32), SM_BAD_KEY("smBadKey", Type.I32),
        SM_BYTES("smBytes", Type.I32),
        Q16("q16", Type.POINTER), K16("k16", Type.POINTER), V16("v16", Type.POINTER), BATCH("batch", Type.I32),
        SCALE_LOG2("scaleLog2", Type.F32), STAGES("stages", Type.I32), SM_STAGE("smStage", Type.I32),
        D_OUT("dout", Type.POINTER), GRAD_Q("dq", Type.POINTER), GRAD_K("dk", Type.POINTER), GRAD_V("dv", Type.POINTER),
        DELTA("delta", Type.POINTER), COL_STARTS("colStarts", Type.POINTER),
        COL_QUERY_BLOCKS("colQueryBlocks", Type.POINTER),
        GSB("gsb", Type.I64), GSH("gsh", Type.I64), GSN("gsn", Type.I64),
        DQSB("dqsb", Type.I64), DQSH("dqsh", Type.I64), DQSN("dqsn", Type.I64),
        DKSB("dksb", Type.I64), DKSH("dksh", Type.I64), DKSN("dksn", Type.I64),
        DVSB("dvsb", Type.I64), DVSH("dvsh", Type.I64), DVSN("dvsn", Type.I64),
        KEY_BLOCK_COUNT("keyBlockCount", Type.I32), KEY_TILES_PER_BLOCK("keyTilesPerBlock", Type.I32),
        BWD_ROWS("bwdRows", Type.I32), CAUSAL_SHIFT("causalShift", Type.I64);

        final String cName;
        final Type type;

        Field(String cName, Type type) {
            this.cName = cName;
            this.type = type;
        }
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
