package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.ElementType;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A plain row-by-row backend on the shared plan ({@link BasePlan} for the checks, {@link TokenMask}
 * for the keys each row reads, {@link OnlineSoftmax} for the streaming softmax and its finish) that
 * is right with {@link Flaw#NONE} and wrong in exactly one small, deliberate way otherwise: the
 * kit's self-test checks that each flaw is caught by the rule meant to catch it.
 *
 * <p>Public, with a public no-argument constructor ({@link Flaw#NONE}), as the SPI asks.
 */
public class FlawedBackend implements SparseAttention {

    /** One deliberate defect each, with the rule meant to catch it. */
    enum Flaw {
        /** Correct. */
        NONE,
        /** Rule 1: reads one key past the end of each allowed block (a window off by one). */
        WINDOW_OFF_BY_ONE,
        /** Rule 1: counts the row's first allowed block twice, as if two parts of a pattern selected it. */
        DUPLICATE_BLOCK,
        /** Rule 1: forgets the scale. */
        SCALE_MISSING,
        /** Rule 7: softmax without subtracting the maximum. */
        NO_MAX_SHIFT,
        /** Rule 10: writes into its input after computing. */
        WRITES_INPUT,
        /** Rule 12: keeps its score buffer in a field shared by concurrent calls. */
        SHARED_SCRATCH,
        /** Rule 2: treats the tail block as full, reading past Nk. */
        TAIL_PAST_END,
        /** Rule 9: leaves rows with no allowed key unwritten. */
        EMPTY_ROWS_UNWRITTEN,
        /** Rule 20: a NaN in a value vector the row reads turns the whole output row NaN, not just that feature. */
        VALUE_NAN_POISONS_ROW,
        /** Rule 20: a {@code −∞} score poisons the row (as if tested with {@code !isFinite}) instead of being a zero weight. */
        NEG_INF_SCORE_POISONS_ROW,
        /** Rule 20: a {@code ±∞} in a value becomes NaN (as in a product that meets {@code 0·∞}), not {@code ±∞}. */
        INF_VALUE_BECOMES_NAN,
        /** Rule 21 (and 6): LSE written in log base 2. */
        LSE_LOG2,
        /** Rule 21: LSE without the max shift: {@code ln Σ exp(s − m)} instead of {@code m + ln Σ exp(s − m)}. */
        LSE_MISSES_MAX,
        /** Rule 3: causal aligned top-left ({@code j <= i}) instead of bottom-right ({@code j <= i + Nk − Nq}). */
        CAUSAL_TOP_LEFT,
        /** Rule 4: query head {@code h} reads key/value head {@code h % Hkv} instead of {@code h / (Hq / Hkv)}. */
        GQA_WRONG_HEAD,
        /** Rule 5: key lengths ignored (padded keys read). */
        KEY_LENGTHS_IGNORED,
        /** Rule 8: a row with no allowed key divides by a zero sum: NaN output and LSE. */
        EMPTY_ROW_NAN,
        /** Rule 11: every other call of a plan visits a row's blocks in reverse order (last bits differ). */
        NONDETERMINISTIC,
        /** Rule 13: keys cut from a block by lengths or causal are still multiplied, by a zero weight ({@code 0·NaN}). */
        MASKED_NAN_LEAKS,
        /** Rule 14: a key whose score is NaN is skipped, as if masked, so the NaN never reaches its rows. */
        ALLOWED_NAN_HIDDEN,
        /** Rule 15: the plan zeroes the output before the shape checks refuse the call. */
        WRITES_BEFORE_CHECK,
        /** Rule 16: close() does nothing; forward keeps working. */
        CLOSE_IGNORED,
        /** Rule 17: does not declare causal, yet runs a causal problem as if it were not causal. */
        UNDECLARED_CAUSAL_IGNORED,
        /** Rule 18: addresses every tensor as BHSD. */
        BSHD_AS_BHSD,
        /** Rule 19: each plan allocates an {@code Nq × Nk} score matrix. */
        QUADRATIC_MEMORY,
        /**
         * Rule 22: the key/value batch stride uses {@code Hq}: right for batch 1 or without GQA, wrong for
         * batch &gt; 1 with GQA (reading another entry's keys, wrapping past the end).
         */
        GQA_BATCH_KV_OFFSET,
        /** Rule 22: the LSE batch stride uses {@code Hkv}: LSE misplaced only with GQA and batch &gt; 1. */
        LSE_BATCH_STRIDE_GQA,
        /** Rule 22 (and 20, 21): LSE written in {@code [B, Nq, Hq]} order when {@code q} is BSHD. */
        LSE_ORDER_BSHD,
        /** Rule 22: causal alignment from the entry's lengths, {@code i + keyLength(b) − queryLength(b)}, not {@code Nk − Nq}. */
        CAUSAL_PER_ENTRY_LENGTHS,
        /** Rule 22: the dot product unrolled by 4 with no remainder loop: features past {@code D − D % 4} dropped. */
        UNROLLED_NO_REMAINDER,
        /** Rule 22: a fixed 64-feature tile while declaring any head dim: features 64 and above dropped. */
        FIXED_64_TILE,
        /** Rule 22: every tensor addressed with {@code q}'s layout. */
        ONE_LAYOUT_FOR_ALL,
        /** Rule 22: key blocks placed with the query block size. */
        EQUAL_BLOCKS_ASSUMED,
        /** Rule 23: a fast path taken from 8,192 keys on, which drops the last block of rows with more than 8. */
        LONG_FAST_PATH,
        /** Rule 12: the output is staged in a buffer the plan owns, then copied out. */
        OUTPUT_STAGED_IN_PLAN,
        /** Rule 24: linear memory, quadratic time: every key block is computed in full, then the layout masks it. */
        QUADRATIC_TIME,
        /** Rule 25: a name with capitals, which {@code -Dstarling.backend} can never select. */
        NON_LOWERCASE_NAME,
        /** Rule 25: priority() changes from call to call. */
        UNSTABLE_PRIORITY,
        /**
         * Rule 26: the causal rule always aligned bottom-right ({@code j <= i + Nk − Nq}), ignoring the
         * problem's {@code causalShift}: right for whole problems, wrong for a key shard, whose rule moves.
         */
        CAUSAL_SHIFT_IGNORED,
        /** Rule 17: does not declare backward, yet its plan computes gradients instead of refusing. */
        UNDECLARED_BACKWARD_RUNS,
        /** Rule 27: {@code dS = P·(dO·v)}, the {@code − Dᵢ} term missing. */
        BACKWARD_MISSING_DELTA,
        /** Rule 27: {@code dq} and {@code dk} multiplied by the scale twice. */
        BACKWARD_SCALE_TWICE,
        /**
         * Rule 28: the backward reads every key of a row's allowed blocks, ignoring the causal rule and the
         * key and query lengths inside them: masked pairs leak gradient.
         */
        BACKWARD_MASK_IGNORED,
        /** Rule 29: only the first query head of each group adds into {@code dk} and {@code dv}. */
        BACKWARD_GQA_FIRST_HEAD_ONLY,
        /**
         * Rule 30: pairs of an allowed block that the mask cuts (causal, lengths, padded rows) get a zero
         * weight but are still multiplied, so {@code 0·NaN} carries a NaN in one row's {@code q} or
         * {@code dOut} into keys that row does not read (NaN leaking across rows).
         */
        BACKWARD_MASKED_NAN_LEAKS,
        /** Rule 31: every other call accumulates {@code dk} and {@code dv} in float32, over the rows in reverse order. */
        BACKWARD_NONDETERMINISTIC,
        /** Rule 32: the {@code dk}/{@code dv} accumulators live in a field shared by concurrent calls. */
        BACKWARD_SHARED_SCRATCH,
        /** Rule 33: {@code dk} of keys no row reads is never written (the kernel visits only keys some row reads). */
        BACKWARD_UNREAD_KEYS_UNWRITTEN,
        /** Rule 34: zeroes {@code dOut} of padded query rows in the caller's array (a loss mask applied in place). */
        BACKWARD_WRITES_DOUT,
        /** Rule 35: zeroes the gradients before the checks refuse the call. */
        BACKWARD_WRITES_BEFORE_CHECK,
        /** Rule 36: backward skips the open check: it runs on a closed plan (forward still refuses). */
        BACKWARD_IGNORES_CLOSE,
        /**
         * Rule 37: the {@code dk}/{@code dv} batch stride uses {@code Hq}: right for batch 1 or without GQA,
         * wrong for batch &gt; 1 with GQA.
         */
        BACKWARD_GQA_BATCH_KV_OFFSET,
        /**
         * Rule 43: the backward takes {@code P = exp(s − LSE)} straight from the float32 LSE the forward
         * gave, which at scores of {@code 1e9} cannot tell {@code m + ln 2} from {@code m}: tied weights of
         * 1/2 become 1 (or 0).
         */
        BACKWARD_P_FROM_FLOAT32_LSE,
        /**
         * Rule 42: each call computes on a helper thread and, when interrupted, throws at once while the
         * helper keeps writing the output; close() does not wait for it.
         */
        KEEPS_WRITING_AFTER_INTERRUPT,
        /**
         * No flaw: the backward rounds every product, sum, exponential and accumulator to float32, as a
         * plain float32 kernel with sequential sums would; it must pass the gradient rules with the fp32
         * gradient tolerance (the self-test prints how close it comes).
         */
        FLOAT32_BACKWARD,
        /** Rule 38: declares strided tensors but addresses float32 heap views as if packed (their strides ignored). */
        STRIDES_IGNORED,
        /** Rule 39: declares off-heap tensors but reads and writes a buffer view from element 0, ignoring its start. */
        BUFFER_FROM_ZERO,
        /** Rule 40: declares bf16 tensors but rounds bf16 outputs by truncating the low 16 bits. */
        BF16_TRUNCATED,
        /** Rule 41: declares block counts but computes set semantics (every count taken as 1), forward and backward. */
        BLOCK_COUNTS_IGNORED,
        /** Rule 41: the forward honours block counts, the backward ignores them ({@code P} without {@code ln c}). */
        BACKWARD_BLOCK_COUNTS_IGNORED,
        /**
         * Rule 44: declares strided tensors and backward, reads every view right, but writes float32 heap
         * gradients as if packed from the view's start (their strides ignored).
         */
        GRADIENTS_PACKED_IN_VIEW,
        /** Rule 44: writes an LSE view as {@code B·Hq·Nq} packed floats from the view's start, its strides ignored. */
        LSE_VIEW_PACKED,
        /**
         * Rule 45: the backward of a row of more than {@value FlawedBackend#LONG_ROW_BLOCKS} key blocks (a long row,
         * split into units) loses its last block: neither its {@code dq} nor those keys' {@code dk}, {@code dv} see it.
         */
        BACKWARD_LONG_ROWS_DROP_LAST,
        /**
         * Rule 46: the backward aligns the causal rule bottom-right ({@code j <= i + Nk − Nq}), ignoring the problem's
         * {@code causalShift}; the forward honours it.
         */
        BACKWARD_CAUSAL_SHIFT_IGNORED,
        /**
         * Rule 47: rows of more than {@value FlawedBackend#LONG_ROW_BLOCKS} key blocks are computed in units of that
         * many blocks, each finished to {@code (O, LSE)}, and recombined against the first unit's LSE instead of the
         * largest: exact in real arithmetic, an overflow ({@code exp(LSE_u − LSE_0)}) when a later unit's scores are
         * far larger.
         */
        SPLIT_MERGE_WRONG_MAX,
        /**
         * Rule 48: as Hugging Face's BigBird, the layout's global columns (key blocks every query block of the head
         * reads) are visited as a part of their own, and again in the window: a global column within one block of
         * the row's query block counts twice.
         */
        GLOBAL_IN_WINDOW_TWICE,
        /**
         * Rule 49: a key block whose largest score is more than 16 below the running maximum is skipped as
         * negligible ({@code e^-16} is about float32's epsilon), although its keys are allowed and weigh.
         */
        NEGLIGIBLE_BLOCKS_SKIPPED,
        /**
         * Rule 50: declares strided tensors and loads a partial tail key block as a full one, as a tiled kernel
         * does: the keys past {@code Nk} get a zero weight, but their values (whatever the storage holds there) are
         * still multiplied by it ({@code 0·NaN = NaN}); storage past the end of the array is skipped.
         */
        READS_PAST_TAIL,
        /**
         * Rule 51: an approximate exponential, its result rounded to 16 mantissa bits (relative error up to
         * {@code 8e-6}): within the fp32 tolerance rows, several times the error of a plain float32 implementation.
         */
        APPROXIMATE_EXP
    }

    /** Key blocks a row may have before the long-row flaws treat it as long (and split it). */
    static final int LONG_ROW_BLOCKS = 32;

    private final Flaw flaw;
    private final Capabilities capabilities;
    private final AtomicInteger priorityCalls = new AtomicInteger();

    /** The correct backend, as ServiceLoader would create it. */
    public FlawedBackend() {
        this(Flaw.NONE);
    }

    FlawedBackend(Flaw flaw) {
        this(flaw, switch (flaw) {
            case UNDECLARED_CAUSAL_IGNORED ->
                    Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                            .without(Feature.CAUSAL, Feature.CAUSAL_SHIFT).build();
            case UNDECLARED_BACKWARD_RUNS -> Capabilities.full("cpu", EnumSet.of(Precision.FP32));
            case STRIDES_IGNORED -> Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                    .features(Feature.STRIDED_TENSORS).build();
            case BUFFER_FROM_ZERO -> Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                    .features(Feature.OFF_HEAP_TENSORS).build();
            case BF16_TRUNCATED -> Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                    .features(Feature.BF16_TENSORS).build();
            case GRADIENTS_PACKED_IN_VIEW -> Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                    .features(Feature.STRIDED_TENSORS, Feature.BACKWARD).build();
            case READS_PAST_TAIL -> Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                    .features(Feature.STRIDED_TENSORS).build();
            default -> Capabilities.full("cpu", EnumSet.of(Precision.FP32)).toBuilder()
                    .features(Feature.BACKWARD, Feature.BLOCK_COUNTS).build();
        });
    }

    /** A backend declaring only {@code capabilities} (its plans refuse the rest). */
    FlawedBackend(Flaw flaw, Capabilities capabilities) {
        this.flaw = flaw;
        this.capabilities = capabilities;
    }

    /**
     * Rule 25: a correct backend whose no-argument constructor starts a thread (that lives a few
     * seconds) every time it runs.
     */
    public static final class ThreadInConstructor extends FlawedBackend {
        /** Starts a thread: the work the SPI forbids here. */
        public ThreadInConstructor() {
            Thread t = new Thread(() -> {
                try {
                    Thread.sleep(3_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "flawed-constructor-worker");
            t.setDaemon(true);
            t.start();
        }
    }

    /** A correct backend that is unavailable here: the SPI contract (rule 25) still holds. */
    public static final class Unavailable extends FlawedBackend {
        /** Does nothing. */
        public Unavailable() {
        }

        @Override
        public Availability availability() {
            return Availability.unavailable("no such device here");
        }
    }

    /** The flawed instance rule 19's child JVM builds for {@link Flaw#QUADRATIC_MEMORY}. */
    public static final class QuadraticMemory implements java.util.function.Supplier<SparseAttention> {
        /** Nothing to set up. */
        public QuadraticMemory() {
        }

        @Override
        public SparseAttention get() {
            return new FlawedBackend(Flaw.QUADRATIC_MEMORY);
        }
    }

    @Override
    public String name() {
        String name = "flawed-" + flaw.name().toLowerCase().replace('_', '-');
        return flaw == Flaw.NON_LOWERCASE_NAME ? "Flawed-NonLowercase" : name;
    }

    @Override
    public int priority() {
        return flaw == Flaw.UNSTABLE_PRIORITY ? priorityCalls.getAndIncrement() : 0;
    }

    @Override
    public Availability availability() {
        return Availability.available();
    }

    @Override
    public Capabilities capabilities() {
        return capabilities;
    }

    // BasePlan checks through the three-argument form (a plan's own capabilities), so the flaw lives there.
    @Override
    public void checkPlan(AttentionProblem problem, BlockLayout layout, Capabilities planCapabilities) {
        if (flaw == Flaw.UNDECLARED_CAUSAL_IGNORED && problem != null && problem.causal()) {
            problem.checkLayout(layout); // the capability check is what this flaw forgets
            return;
        }
        SparseAttention.super.checkPlan(problem, layout, planCapabilities);
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        Plan plan = new Plan(problem, layout);
        return switch (flaw) {
            case WRITES_BEFORE_CHECK -> new Wrapper(plan) {
                @Override
                public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
                    if (out != null) {
                        Arrays.fill(out.data(), 0f);
                    }
                    plan.forward(q, k, v, out, lse);
                }
            };
            case STRIDES_IGNORED, BUFFER_FROM_ZERO, BF16_TRUNCATED -> new Wrapper(plan) {
                @Override
                public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
                    Tensor scratch = Tensor.zeros(out.layout(), out.batch(), out.heads(), out.length(), out.dim());
                    plan.forward(misread(q), misread(k), misread(v), scratch, lse);
                    miswrite(scratch, out);
                }
            };
            case GRADIENTS_PACKED_IN_VIEW -> new Wrapper(plan) {
                @Override
                public void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                     Tensor dk, Tensor dv) {
                    Tensor[] grads = {dq, dk, dv};
                    Tensor[] scratch = new Tensor[3];
                    for (int g = 0; g < 3; g++) {
                        Tensor t = grads[g];
                        scratch[g] = t == null ? null : Tensor.zeros(t.layout(), t.batch(), t.heads(), t.length(), t.dim());
                    }
                    plan.backward(q, k, v, out, lse, dOut, scratch[0], scratch[1], scratch[2]);
                    for (int g = 0; g < 3; g++) {
                        miswrite(scratch[g], grads[g]);
                    }
                }
            };
            case LSE_VIEW_PACKED -> new Wrapper(plan) {
                @Override
                public void forwardWithLse(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
                    AttentionProblem p = problem();
                    float[] values = new float[p.lseSize()];
                    plan.forward(q, k, v, out, values);
                    for (int r = 0; r < values.length; r++) {
                        lse.write(lse.start() + r, values[r]);
                    }
                }
            };
            case KEEPS_WRITING_AFTER_INTERRUPT -> new Wrapper(plan) {
                @Override
                public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
                    onHelper(() -> plan.forward(q, k, v, out, lse));
                }

                @Override
                public void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                     Tensor dk, Tensor dv) {
                    onHelper(() -> plan.backward(q, k, v, out, lse, dOut, dq, dk, dv));
                }
            };
            case CLOSE_IGNORED -> new Wrapper(plan) {
                @Override
                public void close() {
                }
            };
            case BACKWARD_WRITES_BEFORE_CHECK -> new Wrapper(plan) {
                @Override
                public void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                     Tensor dk, Tensor dv) {
                    for (Tensor g : new Tensor[] {dq, dk, dv}) {
                        if (g != null) {
                            Arrays.fill(g.data(), 0f);
                        }
                    }
                    plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
                }
            };
            case BACKWARD_IGNORES_CLOSE, UNDECLARED_BACKWARD_RUNS -> new Wrapper(plan) {
                @Override
                public void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                     Tensor dk, Tensor dv) {
                    plan.backwardUnchecked(q, k, v, out, lse, dOut, dq, dk, dv);
                }
            };
            default -> plan;
        };
    }

    /** Runs {@code call} on a new thread and waits for it, but gives up at once when interrupted (the flaw). */
    private static void onHelper(Runnable call) {
        java.util.concurrent.atomic.AtomicReference<RuntimeException> failed = new java.util.concurrent.atomic.AtomicReference<>();
        Thread helper = new Thread(() -> {
            try {
                call.run();
            } catch (RuntimeException e) {
                failed.set(e);
            }
        }, "flawed-helper");
        helper.setDaemon(true);
        helper.start();
        try {
            helper.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted (the helper thread goes on)");
        }
        if (failed.get() != null) {
            throw failed.get();
        }
    }

    /**
     * Storage index of element {@code (b, h, n, d)} of a view this flaw reads itself, as the flaw
     * computes it: the packed layout's index from the view's start (STRIDES_IGNORED, float32 heap
     * views), or the true index less the start (BUFFER_FROM_ZERO, float32 buffer views).
     */
    private long flawedIndex(Tensor t, int b, int h, int n, int d) {
        if ((flaw == Flaw.STRIDES_IGNORED || flaw == Flaw.GRADIENTS_PACKED_IN_VIEW) && t.onHeap()
                && t.type() == ElementType.FP32) {
            return t.start() + t.layout().rowOffset(b, h, n, t.heads(), t.length(), t.dim()) + d;
        }
        if (flaw == Flaw.BUFFER_FROM_ZERO && !t.onHeap() && t.type() == ElementType.FP32) {
            return t.index(b, h, n, d) - t.start();
        }
        return t.index(b, h, n, d);
    }

    /** A packed float32 copy of {@code t} read as the flaw reads it (indices outside the storage read 0). */
    private Tensor misread(Tensor t) {
        Tensor c = Tensor.zeros(t.layout(), t.batch(), t.heads(), t.length(), t.dim());
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int n = 0; n < t.length(); n++) {
                    for (int d = 0; d < t.dim(); d++) {
                        long i = flawedIndex(t, b, h, n, d);
                        c.data()[c.offset(b, h, n) + d] = i >= 0 && i < t.capacity() ? t.read(i) : 0f;
                    }
                }
            }
        }
        return c;
    }

    /** Writes {@code computed} into {@code out} as the flaw writes (bf16 by truncation for BF16_TRUNCATED). */
    private void miswrite(Tensor computed, Tensor out) {
        for (int b = 0; b < out.batch(); b++) {
            for (int h = 0; h < out.heads(); h++) {
                for (int n = 0; n < out.length(); n++) {
                    for (int d = 0; d < out.dim(); d++) {
                        long i = flawedIndex(out, b, h, n, d);
                        if (i < 0 || i >= out.capacity()) {
                            continue;
                        }
                        float value = computed.get(b, h, n, d);
                        if (flaw == Flaw.BF16_TRUNCATED && out.type() == ElementType.BF16) {
                            short bits = (short) (Float.floatToRawIntBits(value) >>> 16);
                            if (out.onHeap()) {
                                out.shorts()[(int) i] = bits;
                            } else {
                                out.buffer().putShort((int) i * 2, bits);
                            }
                        } else {
                            out.write(i, value);
                        }
                    }
                }
            }
        }
    }

    /**
     * {@link Flaw#SPLIT_MERGE_WRONG_MAX}: a split row's units, each finished to {@code (O_u, LSE_u)}, recombined
     * in float32 as {@code Σ w_u·O_u / Σ w_u} with {@code w_u = exp(LSE_u − LSE_0)}: the first unit's LSE where the
     * largest belongs.
     */
    private static final class SplitMerge {
        private final float[] unit;
        private final float[] merged;
        private final float[] unitLse = new float[1];
        private float reference = Float.NaN;
        private float weights;

        SplitMerge(int width) {
            this.unit = new float[width];
            this.merged = new float[width];
        }

        /** Finishes the unit held in {@code state}, adds it into the recombination and empties {@code state}. */
        void fold(OnlineSoftmax.Rows state) {
            state.finish(0, unit, 0, unitLse, 0);
            if (Float.isNaN(reference)) {
                reference = unitLse[0];
            }
            float w = (float) Math.exp(unitLse[0] - reference);
            for (int d = 0; d < unit.length; d++) {
                merged[d] += w * unit[d];
            }
            weights += w;
            state.reset(1);
        }

        void finish(float[] out, int at, float[] lse, int lseIndex) {
            for (int d = 0; d < merged.length; d++) {
                out[at + d] = merged[d] / weights;
            }
            if (lse != null) {
                lse[lseIndex] = (float) (reference + Math.log(weights));
            }
        }
    }

    /** A plan that passes every call to another. */
    private static class Wrapper implements AttentionPlan {
        private final AttentionPlan plan;

        Wrapper(AttentionPlan plan) {
            this.plan = plan;
        }

        @Override
        public AttentionProblem problem() {
            return plan.problem();
        }

        @Override
        public BlockLayout layout() {
            return plan.layout();
        }

        @Override
        public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
            plan.forward(q, k, v, out, lse);
        }

        @Override
        public void backward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk,
                             Tensor dv) {
            plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
        }

        @Override
        public void close() {
            plan.close();
        }
    }

    private final class Plan extends BasePlan {
        /** Scores of one key block (one more for {@link Flaw#WINDOW_OFF_BY_ONE}); shared only by the flaw. */
        private final double[] sharedScores;
        /** The plan-owned output of {@link Flaw#OUTPUT_STAGED_IN_PLAN}. */
        private final float[] staged;
        /** {@link Flaw#QUADRATIC_MEMORY}: a score matrix nobody needs. */
        @SuppressWarnings("unused")
        private final float[][] dense;
        private final AtomicInteger calls = new AtomicInteger();
        private final AtomicInteger backwardCalls = new AtomicInteger();
        /** {@link Flaw#BACKWARD_SHARED_SCRATCH}: the {@code dk} and {@code dv} accumulators every call shares. */
        private final double[] sharedDk;
        private final double[] sharedDv;
        /** Where {@link Flaw#QUADRATIC_TIME} puts its wasted work, so the JIT keeps it. */
        private volatile double sink;

        Plan(AttentionProblem problem, BlockLayout layout) {
            super(FlawedBackend.this, problem, layout);
            this.sharedScores = new double[Math.max(layout.keyBlock(), layout.queryBlock()) + 1];
            this.staged = flaw == Flaw.OUTPUT_STAGED_IN_PLAN
                    ? new float[problem.batch() * problem.queryHeads() * problem.queryLength() * problem.valueDim()] : null;
            this.dense = flaw == Flaw.QUADRATIC_MEMORY ? new float[problem.queryLength()][problem.keyLength()] : null;
            int keys = problem.batch() * problem.kvHeads() * problem.keyLength();
            this.sharedDk = flaw == Flaw.BACKWARD_SHARED_SCRATCH ? new double[keys * problem.headDim()] : null;
            this.sharedDv = flaw == Flaw.BACKWARD_SHARED_SCRATCH ? new double[keys * problem.valueDim()] : null;
        }

        /** The checks of {@link BasePlan#backward}, then the arithmetic, without the open check or the capability. */
        void backwardUnchecked(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk,
                               Tensor dv) {
            problem().checkGradients(q, k, v, out, lse, dOut, dq, dk, dv);
            computeBackward(q, k, v, out, lse, dOut, dq, dk, dv);
        }

        /**
         * A plain float64 backward, row by row over the keys {@link TokenMask} allows (DESIGN section 4):
         * {@code P = exp(s·q·k − LSE)}, {@code D = dO·O}, {@code dS = P·(dO·v − D)}; {@code dq} written per
         * row, {@code dk} and {@code dv} accumulated over every row and written at the end. Right with
         * {@link Flaw#NONE}; each {@code BACKWARD_} flaw changes one thing.
         */
        @Override
        protected void computeBackward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                       Tensor dk, Tensor dv) {
            AttentionProblem p = problem();
            int dim = p.headDim();
            int vdim = p.valueDim();
            int nq = p.queryLength();
            int keys = p.batch() * p.kvHeads() * p.keyLength();
            double gradScale = flaw == Flaw.BACKWARD_SCALE_TWICE ? (double) p.scale() * p.scale() : p.scale();
            boolean shared = flaw == Flaw.BACKWARD_SHARED_SCRATCH;
            boolean single = flaw == Flaw.BACKWARD_NONDETERMINISTIC;
            boolean reverse = single && backwardCalls.getAndIncrement() % 2 == 1;
            double[] accK = shared ? sharedDk : new double[keys * dim];
            double[] accV = shared ? sharedDv : new double[keys * vdim];
            if (shared) {
                Arrays.fill(accK, 0);
                Arrays.fill(accV, 0);
            }
            float[] accK32 = single ? new float[keys * dim] : null;
            float[] accV32 = single ? new float[keys * vdim] : null;
            boolean[] read = new boolean[keys];
            if (flaw == Flaw.BACKWARD_WRITES_DOUT) {
                for (int b = 0; b < p.batch(); b++) {
                    for (int h = 0; h < p.queryHeads(); h++) {
                        for (int i = p.queryLength(b); i < nq; i++) {
                            Arrays.fill(dOut.data(), dOut.offset(b, h, i), dOut.offset(b, h, i) + vdim, 0f);
                        }
                    }
                }
            }
            double[] accQ = new double[dim];
            for (int b = 0; b < p.batch(); b++) {
                for (int h = 0; h < p.queryHeads(); h++) {
                    for (int x = 0; x < nq; x++) {
                        int i = reverse ? nq - 1 - x : x;
                        backwardRow(q, k, v, out, lse, dOut, dq, b, h, i, gradScale, accQ, accK, accV, accK32, accV32, read);
                        if (shared) {
                            Thread.yield(); // another call may zero or add into the shared accumulators now
                        }
                    }
                }
            }
            for (int b = 0; b < p.batch(); b++) {
                for (int kvh = 0; kvh < p.kvHeads(); kvh++) {
                    for (int j = 0; j < p.keyLength(); j++) {
                        int key = (b * p.kvHeads() + kvh) * p.keyLength() + j;
                        int ko = gradientOffset(dk, b, kvh, j);
                        int vo = gradientOffset(dv, b, kvh, j);
                        if (!(flaw == Flaw.BACKWARD_UNREAD_KEYS_UNWRITTEN && !read[key])) {
                            for (int d = 0; d < dim; d++) {
                                dk.data()[ko + d] = (float) (gradScale * (single ? accK32[key * dim + d] : accK[key * dim + d]));
                            }
                        }
                        for (int d = 0; d < vdim; d++) {
                            dv.data()[vo + d] = single ? accV32[key * vdim + d] : (float) accV[key * vdim + d];
                        }
                    }
                }
            }
        }

        /** @return {@code x} rounded to float32 for {@link Flaw#FLOAT32_BACKWARD}, else {@code x} */
        private double f32(double x) {
            return flaw == Flaw.FLOAT32_BACKWARD ? (float) x : x;
        }

        /** Where key {@code (b, kvh, j)} of a key gradient goes, as the flaw computes it. */
        private int gradientOffset(Tensor t, int b, int kvh, int j) {
            if (flaw == Flaw.BACKWARD_GQA_BATCH_KV_OFFSET) {
                return (int) ((t.offset(0, kvh, j) + (long) b * problem().queryHeads() * t.length() * t.dim())
                        % t.data().length);
            }
            return t.offset(b, kvh, j);
        }

        /**
         * The row's maximum score {@code m} and {@code ln Σ exp(s − m)} over the keys it reads, from its
         * own scores in this backward's arithmetic ({@code m} NaN when the maximum is not finite): the
         * float32 LSE of the forward cannot resolve them at huge logits.
         */
        private double[] rowMaxAndLogSum(Tensor q, Tensor k, int b, int h, int i) {
            AttentionProblem p = problem();
            BlockLayout layout = layout();
            TokenMask mask = mask();
            int kvh = p.kvHeadOf(h);
            int qb = i / layout.queryBlock();
            int qo = q.offset(b, h, i);
            double m = Double.NEGATIVE_INFINITY;
            double sum = 0;
            for (int pass = 0; pass < 2; pass++) {
                for (int at = layout.rowBegin(h, qb); at < layout.rowEnd(h, qb); at++) {
                    int kb = layout.keyBlock(h, at);
                    double logWeight = flaw == Flaw.BLOCK_COUNTS_IGNORED || flaw == Flaw.BACKWARD_BLOCK_COUNTS_IGNORED ? 0
                            : mask.logWeight(h, at);
                    for (int j = mask.keyBegin(kb); j < backwardKeyEnd(b, i, kb); j++) {
                        int ko = k.offset(b, kvh, j);
                        double dot = 0;
                        for (int d = 0; d < p.headDim(); d++) {
                            dot = f32(dot + f32((double) q.data()[qo + d] * k.data()[ko + d]));
                        }
                        double score = f32(f32(p.scale() * dot) + logWeight);
                        if (pass == 0) {
                            m = Math.max(m, score);
                        } else {
                            sum = f32(sum + f32(Math.exp(f32(score - m))));
                        }
                    }
                }
                if (!(m < Double.POSITIVE_INFINITY && m > Double.NEGATIVE_INFINITY)) {
                    return new double[] {Double.NaN, 0};
                }
            }
            return new double[] {m, f32(Math.log(sum))};
        }

        /**
         * {@link Flaw#GLOBAL_IN_WINDOW_TWICE}: the key blocks within one block of {@code qb} that every query block of
         * head {@code h} reads (the layout's global columns in the row's window).
         */
        private int[] globalColumnsNear(int h, int qb) {
            BlockLayout layout = layout();
            return java.util.stream.IntStream.rangeClosed(qb - 1, qb + 1).filter(kb -> kb >= 0 && kb < layout.keyBlocks())
                    .filter(kb -> java.util.stream.IntStream.range(0, layout.queryBlocks())
                            .allMatch(r -> layout.allowed(h, r, kb))).toArray();
        }

        /** End of the keys of block {@code kb} that row {@code i} reads in the backward, as the flaw computes it. */
        private int backwardKeyEnd(int b, int i, int kb) {
            AttentionProblem p = problem();
            TokenMask mask = mask();
            if (flaw == Flaw.BACKWARD_CAUSAL_SHIFT_IGNORED && mask.causal()) {
                int bottomRight = TokenMask.causalKeyEnd(i, TokenMask.bottomRightShift(p.queryLength(), p.keyLength()),
                        p.keyLength());
                return Math.min(mask.keyEnd(kb), Math.min(p.keyLength(b), bottomRight));
            }
            return mask.keyEnd(b, i, kb);
        }

        /** Row {@code (b, h, i)}: writes its {@code dq} row and adds its pairs into the key accumulators. */
        private void backwardRow(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, int b,
                                 int h, int i, double gradScale, double[] accQ, double[] accK, double[] accV,
                                 float[] accK32, float[] accV32, boolean[] read) {
            AttentionProblem p = problem();
            BlockLayout layout = layout();
            TokenMask mask = mask();
            int dim = p.headDim();
            int vdim = p.valueDim();
            int kvh = p.kvHeadOf(h);
            boolean toKeys = !(flaw == Flaw.BACKWARD_GQA_FIRST_HEAD_ONLY && h % p.groupSize() != 0);
            boolean valid = i < p.queryLength(b);
            boolean leaky = flaw == Flaw.BACKWARD_MASKED_NAN_LEAKS;
            boolean ignoreMask = flaw == Flaw.BACKWARD_MASK_IGNORED && valid;
            int qb = i / layout.queryBlock();
            int qo = q.offset(b, h, i);
            int go = dOut.offset(b, h, i);
            int oo = out.offset(b, h, i);
            // P = exp((s − m) − ln Σ): the row's maximum and sum, not their sum m + ln Σ, which at scores of
            // 1e15 not even float64 resolves; the forward's LSE (m, ln Σ = 0) only with the flaw.
            double l = lse[mask.lseIndex(b, h, i)];
            double logSum = 0;
            if (flaw != Flaw.BACKWARD_P_FROM_FLOAT32_LSE && Double.isFinite(l) && valid) {
                double[] stats = rowMaxAndLogSum(q, k, b, h, i);
                l = stats[0];
                logSum = stats[1];
            }
            double delta = 0;
            for (int d = 0; d < vdim; d++) {
                delta = f32(delta + f32((double) dOut.data()[go + d] * out.data()[oo + d]));
            }
            if (flaw == Flaw.BACKWARD_MISSING_DELTA) {
                delta = 0;
            }
            Arrays.fill(accQ, 0);
            int rowEnd = layout.rowEnd(h, qb);
            if (flaw == Flaw.BACKWARD_LONG_ROWS_DROP_LAST && rowEnd - layout.rowBegin(h, qb) > LONG_ROW_BLOCKS) {
                rowEnd--;
            }
            for (int at = layout.rowBegin(h, qb); at < rowEnd; at++) {
                int kb = layout.keyBlock(h, at);
                double logWeight = flaw == Flaw.BLOCK_COUNTS_IGNORED || flaw == Flaw.BACKWARD_BLOCK_COUNTS_IGNORED ? 0
                        : mask.logWeight(h, at);
                int j0 = mask.keyBegin(kb);
                int allowedEnd = valid ? backwardKeyEnd(b, i, kb) : j0;
                int end = leaky || ignoreMask ? mask.keyEnd(kb) : allowedEnd;
                for (int j = j0; j < end; j++) {
                    boolean allowed = j < allowedEnd;
                    int ko = k.offset(b, kvh, j);
                    int vo = v.offset(b, kvh, j);
                    double pij = 0;
                    if (allowed || ignoreMask) {
                        double dot = 0;
                        for (int d = 0; d < dim; d++) {
                            dot = f32(dot + f32((double) q.data()[qo + d] * k.data()[ko + d]));
                        }
                        pij = f32(Math.exp(f32(f32(f32(f32(p.scale() * dot) + logWeight) - l) - logSum)));
                    }
                    double dp = 0;
                    for (int d = 0; d < vdim; d++) {
                        dp = f32(dp + f32((double) dOut.data()[go + d] * v.data()[vo + d]));
                    }
                    double ds = f32(pij * f32(dp - delta));
                    for (int d = 0; d < dim; d++) {
                        accQ[d] = f32(accQ[d] + f32(ds * k.data()[ko + d]));
                    }
                    if (!toKeys) {
                        continue;
                    }
                    int key = (b * p.kvHeads() + kvh) * p.keyLength() + j;
                    read[key] |= allowed;
                    for (int d = 0; d < dim; d++) {
                        if (accK32 != null) {
                            accK32[key * dim + d] += (float) (ds * q.data()[qo + d]);
                        } else {
                            accK[key * dim + d] = f32(accK[key * dim + d] + f32(ds * q.data()[qo + d]));
                        }
                    }
                    for (int d = 0; d < vdim; d++) {
                        if (accV32 != null) {
                            accV32[key * vdim + d] += (float) (pij * dOut.data()[go + d]);
                        } else {
                            accV[key * vdim + d] = f32(accV[key * vdim + d] + f32(pij * dOut.data()[go + d]));
                        }
                    }
                }
            }
            int dqo = dq.offset(b, h, i);
            for (int d = 0; d < dim; d++) {
                dq.data()[dqo + d] = (float) (gradScale * accQ[d]);
            }
        }

        @Override
        protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
            AttentionProblem p = problem();
            double[] scores = flaw == Flaw.SHARED_SCRATCH ? sharedScores : new double[sharedScores.length];
            boolean reverse = flaw == Flaw.NONDETERMINISTIC && calls.getAndIncrement() % 2 == 1;
            Tensor target = staged == null ? out : Tensor.of(out.layout(), staged, out.batch(), out.heads(), out.length(),
                    out.dim());
            OnlineSoftmax.Rows state = new OnlineSoftmax.Rows(1, p.valueDim());
            OnlineSoftmax.Rows waste = new OnlineSoftmax.Rows(1, p.valueDim());
            for (int b = 0; b < p.batch(); b++) {
                for (int h = 0; h < p.queryHeads(); h++) {
                    for (int i = 0; i < p.queryLength(); i++) {
                        row(q, k, v, target, lse, b, h, i, scores, state, waste, reverse);
                    }
                }
            }
            if (staged != null) {
                Thread.yield(); // another call may be writing the staged output now
                System.arraycopy(staged, 0, out.data(), 0, staged.length);
            }
            if (flaw == Flaw.WRITES_INPUT) {
                q.data()[0] = 0f;
            }
        }

        /** Offset of row {@code (b, h, n)} of {@code t}, addressed as the flaw addresses it. */
        private int offset(Tensor t, Tensor q, boolean keyValue, int b, int h, int n) {
            AttentionProblem p = problem();
            return switch (flaw) {
                case BSHD_AS_BHSD -> (int) TensorLayout.BHSD.rowOffset(b, h, n, t.heads(), t.length(), t.dim());
                case ONE_LAYOUT_FOR_ALL -> (int) q.layout().rowOffset(b, h, n, t.heads(), t.length(), t.dim());
                case GQA_BATCH_KV_OFFSET -> keyValue
                        ? (int) ((t.offset(0, h, n) + (long) b * p.queryHeads() * t.length() * t.dim()) % t.data().length)
                        : t.offset(b, h, n);
                default -> t.offset(b, h, n);
            };
        }

        private int lseIndex(Tensor q, int b, int h, int i) {
            AttentionProblem p = problem();
            return switch (flaw) {
                case LSE_BATCH_STRIDE_GQA -> (b * p.kvHeads() + h) * p.queryLength() + i;
                case LSE_ORDER_BSHD -> q.layout() == TensorLayout.BSHD ? (b * p.queryLength() + i) * p.queryHeads() + h
                        : mask().lseIndex(b, h, i);
                default -> mask().lseIndex(b, h, i);
            };
        }

        /** End of the keys row {@code i} reads by lengths and causal, as the flaw computes it. */
        private int rowKeyEnd(int b, int i) {
            AttentionProblem p = problem();
            TokenMask mask = mask();
            return switch (flaw) {
                case CAUSAL_TOP_LEFT -> mask.causal() ? Math.min(p.keyLength(b), i + 1) : mask.rowKeyEnd(b, i);
                case CAUSAL_PER_ENTRY_LENGTHS -> mask.causal()
                        ? Math.max(0, Math.min(p.keyLength(b), i + p.keyLength(b) - p.queryLength(b) + 1))
                        : mask.rowKeyEnd(b, i);
                case KEY_LENGTHS_IGNORED -> mask.causal() ? TokenMask.causalKeyEnd(i, p.causalShift(), p.keyLength())
                        : p.keyLength();
                case UNDECLARED_CAUSAL_IGNORED -> p.keyLength(b);
                case CAUSAL_SHIFT_IGNORED -> mask.causal() ? Math.min(p.keyLength(b), TokenMask.causalKeyEnd(i,
                        TokenMask.bottomRightShift(p.queryLength(), p.keyLength()), p.keyLength())) : mask.rowKeyEnd(b, i);
                default -> mask.rowKeyEnd(b, i);
            };
        }

        /** Row {@code (b, h, i)}: one {@link OnlineSoftmax.Rows#raise} per allowed key block, then finish. */
        private void row(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, int b, int h, int i, double[] scores,
                         OnlineSoftmax.Rows state, OnlineSoftmax.Rows waste, boolean reverse) {
            AttentionProblem p = problem();
            BlockLayout layout = layout();
            TokenMask mask = mask();
            int kvh = flaw == Flaw.GQA_WRONG_HEAD ? h % p.kvHeads() : p.kvHeadOf(h);
            int qb = i / layout.queryBlock();
            int qo = offset(q, q, false, b, h, i);
            int dotDims = switch (flaw) {
                case UNROLLED_NO_REMAINDER -> p.headDim() - p.headDim() % 4;
                case FIXED_64_TILE -> Math.min(64, p.headDim());
                default -> p.headDim();
            };
            int valueDims = flaw == Flaw.FIXED_64_TILE ? Math.min(64, p.valueDim()) : p.valueDim();
            int keyBlock = flaw == Flaw.EQUAL_BLOCKS_ASSUMED ? layout.queryBlock() : layout.keyBlock();
            int rowEnd = rowKeyEnd(b, i);
            state.reset(1);
            boolean readAny = false;
            boolean readNanValue = false;
            int begin = layout.rowBegin(h, qb);
            int end = layout.rowEnd(h, qb);
            if (flaw == Flaw.LONG_FAST_PATH && p.keyLength() >= 8_192 && end - begin > 8) {
                end--; // the fast path's chunks lose the last block of a long row
            }
            // The key blocks visited, and whether each counts: QUADRATIC_TIME visits every key block the same
            // way and throws away those the layout leaves out ("computes everything, then masks").
            int[] visit;
            boolean[] counts;
            if (flaw == Flaw.QUADRATIC_TIME) {
                visit = new int[layout.keyBlocks()];
                counts = new boolean[visit.length];
                for (int kb = 0; kb < visit.length; kb++) {
                    visit[kb] = kb;
                    counts[kb] = layout.allowed(h, qb, kb);
                }
            } else {
                int[] globalsAgain = flaw == Flaw.GLOBAL_IN_WINDOW_TWICE ? globalColumnsNear(h, qb) : new int[0];
                visit = new int[globalsAgain.length + end - begin];
                counts = new boolean[visit.length];
                System.arraycopy(globalsAgain, 0, visit, 0, globalsAgain.length);
                for (int x = globalsAgain.length; x < visit.length; x++) {
                    int at = x - globalsAgain.length;
                    visit[x] = layout.keyBlock(h, reverse ? end - 1 - at : begin + at);
                }
                Arrays.fill(counts, true);
            }
            waste.reset(1);
            SplitMerge split = flaw == Flaw.SPLIT_MERGE_WRONG_MAX && visit.length > LONG_ROW_BLOCKS
                    && i < p.queryLength(b) ? new SplitMerge(p.valueDim()) : null;
            for (int x = 0; x < visit.length && i < p.queryLength(b); x++) {
                if (split != null && x > 0 && x % LONG_ROW_BLOCKS == 0) {
                    split.fold(state);
                }
                int kb = visit[x];
                int entry = layout.entry(h, qb, kb);
                double logWeight = entry < 0 || flaw == Flaw.BLOCK_COUNTS_IGNORED ? 0 : mask.logWeight(h, entry);
                OnlineSoftmax.Rows st = counts[x] ? state : waste;
                float[] into = st.acc();
                int j0 = (int) Math.min(p.keyLength(), (long) kb * keyBlock);
                int blockEnd = (int) Math.min(p.keyLength(), ((long) kb + 1) * keyBlock);
                int j1 = switch (flaw) {
                    case WINDOW_OFF_BY_ONE -> Math.min(blockEnd + 1, rowEnd);
                    // The block's end, not Nk: past the end of the tensor in the tail block.
                    case TAIL_PAST_END -> Math.min(blockEnd, rowEnd) == p.keyLength() ? j0 + keyBlock
                            : Math.min(blockEnd, rowEnd);
                    default -> Math.min(blockEnd, rowEnd);
                };
                int repeat = flaw == Flaw.DUPLICATE_BLOCK && !reverse && x == 0 ? 2 : 1;
                for (int r = 0; r < repeat && j1 > j0; r++) {
                    readAny |= counts[x];
                    double blockMax = Double.NEGATIVE_INFINITY;
                    for (int j = j0; j < j1; j++) {
                        int ko = offset(k, q, true, b, kvh, j);
                        double dot = 0;
                        for (int d = 0; d < dotDims; d++) {
                            dot += (double) q.data()[qo + d] * k.data()[ko + d];
                        }
                        double sc = (flaw == Flaw.SCALE_MISSING ? dot : p.scale() * dot) + logWeight;
                        if (flaw == Flaw.NEG_INF_SCORE_POISONS_ROW && sc == Double.NEGATIVE_INFINITY) {
                            sc = Double.NaN;
                        }
                        if (flaw == Flaw.ALLOWED_NAN_HIDDEN && Double.isNaN(sc)) {
                            sc = Double.NEGATIVE_INFINITY;
                        }
                        scores[j - j0] = sc;
                        blockMax = OnlineSoftmax.max(blockMax, sc);
                    }
                    if (flaw == Flaw.SHARED_SCRATCH) {
                        Thread.yield(); // between writing the scores and reading them: another call may overwrite them
                    }
                    if (flaw == Flaw.NEGLIGIBLE_BLOCKS_SKIPPED && blockMax < st.max(0) - 16) {
                        continue;
                    }
                    // NO_MAX_SHIFT: the running maximum stays 0, so exp() sees the raw scores.
                    double shift = st.raise(0, flaw == Flaw.NO_MAX_SHIFT ? 0.0 : blockMax);
                    double sum = 0;
                    for (int j = j0; j < j1; j++) {
                        double w = Math.exp(scores[j - j0] - shift);
                        if (flaw == Flaw.APPROXIMATE_EXP) {
                            int bits = Float.floatToRawIntBits((float) w);
                            w = Float.intBitsToFloat((bits + (1 << 6)) & ~((1 << 7) - 1));
                        }
                        if (flaw == Flaw.ALLOWED_NAN_HIDDEN && Double.isNaN(w)) {
                            w = 0;
                        }
                        sum += w;
                        int vo = offset(v, q, true, b, kvh, j);
                        for (int d = 0; d < valueDims; d++) {
                            float xv = v.data()[vo + d];
                            readNanValue |= counts[x] && Float.isNaN(xv);
                            if (flaw == Flaw.INF_VALUE_BECOMES_NAN && Float.isInfinite(xv)) {
                                xv = Float.NaN;
                            }
                            if (flaw == Flaw.ALLOWED_NAN_HIDDEN && w == 0) {
                                continue;
                            }
                            into[d] += (float) (w * xv);
                        }
                    }
                    if (flaw == Flaw.READS_PAST_TAIL && blockEnd - j0 < keyBlock) {
                        // The tile's keys past the end of the tensor, "masked" with a zero weight.
                        for (int j = blockEnd; j < j0 + keyBlock; j++) {
                            long vo = v.start() + (long) b * v.strides()[0] + (long) kvh * v.strides()[1]
                                    + (long) j * v.strides()[2];
                            for (int d = 0; d < valueDims && vo + d < v.data().length; d++) {
                                into[d] += 0f * v.data()[(int) (vo + d)];
                            }
                        }
                    }
                    if (flaw == Flaw.MASKED_NAN_LEAKS) {
                        // Keys of the block cut off by lengths or causal, "masked" with a zero weight.
                        for (int j = j1; j < blockEnd; j++) {
                            int vo = offset(v, q, true, b, kvh, j);
                            for (int d = 0; d < valueDims; d++) {
                                into[d] += 0f * v.data()[vo + d];
                            }
                        }
                    }
                    st.add(0, sum);
                }
            }
            if (flaw == Flaw.QUADRATIC_TIME) {
                sink = waste.acc()[0];
            }
            if (!readAny && flaw == Flaw.EMPTY_ROWS_UNWRITTEN) {
                return;
            }
            int oo = offset(out, q, false, b, h, i);
            int li = lseIndex(q, b, h, i);
            if (!readAny && flaw == Flaw.EMPTY_ROW_NAN) {
                Arrays.fill(out.data(), oo, oo + p.valueDim(), Float.NaN);
                if (lse != null) {
                    lse[li] = Float.NaN;
                }
                return;
            }
            if (split != null) {
                split.fold(state);
                split.finish(out.data(), oo, lse, li);
            } else {
                state.finish(0, out.data(), oo, lse, li);
            }
            if (readNanValue && flaw == Flaw.VALUE_NAN_POISONS_ROW) {
                Arrays.fill(out.data(), oo, oo + p.valueDim(), Float.NaN);
            }
            if (flaw == Flaw.FIXED_64_TILE && p.valueDim() > 64) {
                Arrays.fill(out.data(), oo + 64, oo + p.valueDim(), 0f);
            }
            if (lse != null && flaw == Flaw.LSE_LOG2) {
                lse[li] = (float) (lse[li] / Math.log(2));
            }
            if (lse != null && flaw == Flaw.LSE_MISSES_MAX && Double.isFinite(state.max(0))) {
                lse[li] = (float) (lse[li] - state.max(0));
            }
        }
    }
}
