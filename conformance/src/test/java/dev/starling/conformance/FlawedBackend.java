package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import java.util.Arrays;
import java.util.EnumSet;

/**
 * A plain row-by-row backend that is right with {@link Flaw#NONE} and wrong in exactly one way
 * otherwise: the kit's self-test checks that each flaw is caught by the rule meant to catch it.
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
        EMPTY_ROWS_UNWRITTEN
    }

    private final Flaw flaw;

    FlawedBackend(Flaw flaw) {
        this.flaw = flaw;
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
        return Capabilities.full("cpu", EnumSet.of(Precision.FP32));
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        checkPlan(problem, layout);
        return new Plan(problem, layout);
    }

    private final class Plan implements AttentionPlan {
        private final AttentionProblem p;
        private final BlockLayout layout;
        private final double[] sharedScores;
        private volatile boolean closed;

        Plan(AttentionProblem p, BlockLayout layout) {
            this.p = p;
            this.layout = layout;
            this.sharedScores = new double[p.keyLength() + 2 * layout.keyBlock()];
        }

        @Override
        public AttentionProblem problem() {
            return p;
        }

        @Override
        public BlockLayout layout() {
            return layout;
        }

        @Override
        public void close() {
            closed = true;
        }

        @Override
        public void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
            if (closed) {
                throw new IllegalStateException("closed");
            }
            p.checkInputs(q, k, v, out, lse);
            boolean causal = dev.starling.api.plan.TokenMask.of(p, layout).causal();
            int bk = layout.keyBlock();
            int[] keys = new int[p.keyLength() + 2 * bk];
            double[] scores = flaw == Flaw.SHARED_SCRATCH ? sharedScores : new double[keys.length];
            for (int b = 0; b < p.batch(); b++) {
                for (int h = 0; h < p.queryHeads(); h++) {
                    int kvh = p.kvHeadOf(h);
                    for (int i = 0; i < p.queryLength(); i++) {
                        int n = 0;
                        if (i < p.queryLength(b)) {
                            int qb = i / layout.queryBlock();
                            for (int e = layout.rowBegin(h, qb); e < layout.rowEnd(h, qb); e++) {
                                int j0 = layout.keyBlock(h, e) * bk;
                                int j1 = switch (flaw) {
                                    case TAIL_PAST_END -> j0 + bk;
                                    case WINDOW_OFF_BY_ONE -> Math.min(p.keyLength(), j0 + bk + 1);
                                    default -> Math.min(p.keyLength(), j0 + bk);
                                };
                                int validKeys = flaw == Flaw.TAIL_PAST_END && !p.hasKeyLengths() ? Integer.MAX_VALUE
                                        : p.keyLength(b);
                                int repeat = flaw == Flaw.DUPLICATE_BLOCK && e == layout.rowBegin(h, qb) ? 2 : 1;
                                for (int r = 0; r < repeat; r++) {
                                    for (int j = j0; j < j1; j++) {
                                        if (j < validKeys && (!causal || j <= i + p.keyLength() - p.queryLength())) {
                                            keys[n++] = j;
                                        }
                                    }
                                }
                            }
                        }
                        int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                        if (n == 0) {
                            if (flaw != Flaw.EMPTY_ROWS_UNWRITTEN) {
                                Arrays.fill(out.data(), out.offset(b, h, i), out.offset(b, h, i) + p.valueDim(), 0f);
                                if (lse != null) {
                                    lse[row] = Float.NEGATIVE_INFINITY;
                                }
                            }
                            continue;
                        }
                        double max = Double.NEGATIVE_INFINITY;
                        for (int t = 0; t < n; t++) {
                            double dot = 0;
                            int qo = q.offset(b, h, i);
                            int ko = k.offset(b, kvh, 0) + keys[t] * k.rowStride();
                            for (int d = 0; d < p.headDim(); d++) {
                                dot += q.data()[qo + d] * k.data()[ko + d];
                            }
                            scores[t] = flaw == Flaw.SCALE_MISSING ? dot : p.scale() * dot;
                            max = Double.isNaN(scores[t]) || Double.isNaN(max) ? Double.NaN : Math.max(max, scores[t]);
                            Thread.yield();
                        }
                        double shift = flaw == Flaw.NO_MAX_SHIFT ? 0 : max;
                        double sum = 0;
                        for (int t = 0; t < n; t++) {
                            scores[t] = Math.exp(scores[t] - shift);
                            sum += scores[t];
                        }
                        int oo = out.offset(b, h, i);
                        for (int d = 0; d < p.valueDim(); d++) {
                            double acc = 0;
                            for (int t = 0; t < n; t++) {
                                acc += scores[t] * v.data()[v.offset(b, kvh, 0) + keys[t] * v.rowStride() + d];
                            }
                            out.data()[oo + d] = (float) (acc / sum);
                        }
                        if (lse != null) {
                            lse[row] = (float) (shift + Math.log(sum));
                        }
                    }
                }
            }
            if (flaw == Flaw.WRITES_INPUT) {
                q.data()[0] = 0f;
            }
        }
    }
}
