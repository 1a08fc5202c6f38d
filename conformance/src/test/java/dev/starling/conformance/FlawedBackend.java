package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;
import java.util.EnumSet;

/**
 * A plain row-by-row backend on the shared plan ({@link BasePlan} for the checks, {@link TokenMask}
 * for the keys each row reads, {@link OnlineSoftmax} for the streaming softmax and its finish) that
 * is right with {@link Flaw#NONE} and wrong in exactly one small, deliberate way otherwise: the
 * kit's self-test checks that each flaw is caught by the rule meant to catch it.
 */
final class FlawedBackend implements SparseAttention {

    /** One deliberate defect each. */
    enum Flaw {
        /** Correct. */
        NONE,
        /** Reads one key past the end of each allowed block (a window off by one). */
        WINDOW_OFF_BY_ONE,
        /** Counts the row's first allowed block twice, as if two parts of a pattern selected it. */
        DUPLICATE_BLOCK,
        /** Forgets the scale. */
        SCALE_MISSING,
        /** Softmax without subtracting the maximum. */
        NO_MAX_SHIFT,
        /** Writes into its input after computing. */
        WRITES_INPUT,
        /** Keeps its score buffer in a field shared by concurrent calls. */
        SHARED_SCRATCH,
        /** Treats the tail block as full, reading past Nk. */
        TAIL_PAST_END,
        /** Leaves rows with no allowed key unwritten. */
        EMPTY_ROWS_UNWRITTEN,
        /** A NaN in a value vector the row reads turns the whole output row NaN, not just that feature. */
        VALUE_NAN_POISONS_ROW,
        /** A {@code −∞} score poisons the row (as if tested with {@code !isFinite}) instead of being a zero weight. */
        NEG_INF_SCORE_POISONS_ROW,
        /** A {@code ±∞} in a value becomes NaN (as in a product that meets {@code 0·∞}), not {@code ±∞}. */
        INF_VALUE_BECOMES_NAN,
        /** LSE written in log base 2. */
        LSE_LOG2,
        /** LSE without the max shift: {@code ln Σ exp(s − m)} instead of {@code m + ln Σ exp(s − m)}. */
        LSE_MISSES_MAX
    }

    private final Flaw flaw;
    private final Capabilities capabilities;

    FlawedBackend(Flaw flaw) {
        this(flaw, Capabilities.full("cpu", EnumSet.of(Precision.FP32)));
    }

    /** A backend declaring only {@code capabilities} (its plans refuse the rest). */
    FlawedBackend(Flaw flaw, Capabilities capabilities) {
        this.flaw = flaw;
        this.capabilities = capabilities;
    }

    @Override
    public String name() {
        return "flawed-" + flaw.name().toLowerCase();
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Availability availability() {
        return Availability.available();
    }

    @Override
    public Capabilities capabilities() {
        return capabilities;
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        return new Plan(problem, layout);
    }

    private final class Plan extends BasePlan {
        /** Scores of one key block (one more for {@link Flaw#WINDOW_OFF_BY_ONE}); shared only by the flaw. */
        private final double[] sharedScores;

        Plan(AttentionProblem problem, BlockLayout layout) {
            super(FlawedBackend.this, problem, layout);
            this.sharedScores = new double[layout.keyBlock() + 1];
        }

        @Override
        protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
            AttentionProblem p = problem();
            double[] scores = flaw == Flaw.SHARED_SCRATCH ? sharedScores : new double[sharedScores.length];
            OnlineSoftmax.Rows state = new OnlineSoftmax.Rows(1, p.valueDim());
            for (int b = 0; b < p.batch(); b++) {
                for (int h = 0; h < p.queryHeads(); h++) {
                    for (int i = 0; i < p.queryLength(); i++) {
                        row(q, k, v, out, lse, b, h, i, scores, state);
                    }
                }
            }
            if (flaw == Flaw.WRITES_INPUT) {
                q.data()[0] = 0f;
            }
        }

        /** Row {@code (b, h, i)}: one {@link OnlineSoftmax.Rows#raise} per allowed key block, then finish. */
        private void row(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, int b, int h, int i, double[] scores,
                         OnlineSoftmax.Rows state) {
            AttentionProblem p = problem();
            BlockLayout layout = layout();
            TokenMask mask = mask();
            int kvh = p.kvHeadOf(h);
            int qb = i / layout.queryBlock();
            int qo = q.offset(b, h, i);
            float[] acc = state.acc();
            state.reset(1);
            boolean readAny = false;
            boolean readNanValue = false;
            for (int e = layout.rowBegin(h, qb); e < layout.rowEnd(h, qb) && i < p.queryLength(b); e++) {
                int kb = layout.keyBlock(h, e);
                int j0 = mask.keyBegin(kb);
                int j1 = switch (flaw) {
                    case WINDOW_OFF_BY_ONE -> Math.min(mask.keyEnd(kb) + 1, mask.rowKeyEnd(b, i));
                    // The block's end, not Nk: past the end of the tensor in the tail block.
                    case TAIL_PAST_END -> mask.keyEnd(b, i, kb) == p.keyLength() ? j0 + layout.keyBlock()
                            : mask.keyEnd(b, i, kb);
                    default -> mask.keyEnd(b, i, kb);
                };
                int repeat = flaw == Flaw.DUPLICATE_BLOCK && e == layout.rowBegin(h, qb) ? 2 : 1;
                for (int r = 0; r < repeat && j1 > j0; r++) {
                    readAny = true;
                    double blockMax = Double.NEGATIVE_INFINITY;
                    for (int j = j0; j < j1; j++) {
                        int ko = k.offset(b, kvh, 0) + j * k.rowStride();
                        double dot = 0;
                        for (int d = 0; d < p.headDim(); d++) {
                            dot += (double) q.data()[qo + d] * k.data()[ko + d];
                        }
                        double s = flaw == Flaw.SCALE_MISSING ? dot : p.scale() * dot;
                        if (flaw == Flaw.NEG_INF_SCORE_POISONS_ROW && s == Double.NEGATIVE_INFINITY) {
                            s = Double.NaN;
                        }
                        scores[j - j0] = s;
                        blockMax = OnlineSoftmax.max(blockMax, s);
                    }
                    if (flaw == Flaw.SHARED_SCRATCH) {
                        Thread.yield(); // between writing the scores and reading them: another call may overwrite them
                    }
                    // NO_MAX_SHIFT: the running maximum stays 0, so exp() sees the raw scores.
                    double shift = state.raise(0, flaw == Flaw.NO_MAX_SHIFT ? 0.0 : blockMax);
                    double sum = 0;
                    for (int j = j0; j < j1; j++) {
                        double w = Math.exp(scores[j - j0] - shift);
                        sum += w;
                        int vo = v.offset(b, kvh, 0) + j * v.rowStride();
                        for (int d = 0; d < p.valueDim(); d++) {
                            float x = v.data()[vo + d];
                            readNanValue |= Float.isNaN(x);
                            if (flaw == Flaw.INF_VALUE_BECOMES_NAN && Float.isInfinite(x)) {
                                x = Float.NaN;
                            }
                            acc[d] += (float) (w * x);
                        }
                    }
                    state.add(0, sum);
                }
            }
            if (!readAny && flaw == Flaw.EMPTY_ROWS_UNWRITTEN) {
                return;
            }
            int oo = out.offset(b, h, i);
            int li = mask.lseIndex(b, h, i);
            state.finish(0, out.data(), oo, lse, li);
            if (readNanValue && flaw == Flaw.VALUE_NAN_POISONS_ROW) {
                Arrays.fill(out.data(), oo, oo + p.valueDim(), Float.NaN);
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
