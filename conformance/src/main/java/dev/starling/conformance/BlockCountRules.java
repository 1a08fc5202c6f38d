package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Rule 41, block counts (block multiplicity, DESIGN section 2): layouts whose entries carry counts
 * {@code c >= 1}, every key of an entry's block weighing {@code c} times in the softmax. Each case is
 * checked against the float64 oracle forward (with LSE when declared), cut into disjoint key-block
 * sets and into key shards and merged (with LSE), and through {@code backward} against the gradient
 * oracle (when declared). Every case has a row whose counts are all 1 in a layout with counts
 * elsewhere, and one count above 255.
 */
final class BlockCountRules {
    /** Counts drawn for the entries that get one. */
    private static final int[] COUNTS = {2, 3, 4, 7};

    private final long seed;

    BlockCountRules(long seed) {
        this.seed = seed;
    }

    /**
     * The cases: a per-head BigBird layout with a partial tail block; GQA, causal with {@code Nq != Nk}
     * and key lengths over a dense layout; one count of 2 in a window layout. Cases the backend does not
     * declare the features of are left out.
     *
     * @param caps what the backend declares
     * @param precision the precision of the cases
     * @return the cases, each over a layout with counts
     */
    List<AttentionCase> cases(Capabilities caps, Precision precision) {
        List<AttentionCase> out = new ArrayList<>();
        AttentionProblem bigbird = AttentionProblem.builder().batch(2).heads(2).length(200).headDim(16)
                .precision(precision).build();
        add(out, caps, "bigbird with block counts", bigbird, withCounts(
                Patterns.parse("bigbird(block=32, window=3, global=1, random=2, seed=" + seed + ")").layout(200, 200, 2),
                new Random(seed), 0.4), 1);
        AttentionProblem gqa = AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(96).keyLength(160)
                .headDim(8).valueDim(12).causal(true).keyLengths(160, 100).precision(precision).build();
        add(out, caps, "gqa causal nq < nk key lengths with block counts", gqa, withCounts(
                Patterns.parse("dense(block=32)").layout(96, 160, 4, true), new Random(seed + 1), 0.5), 2);
        AttentionProblem one = AttentionProblem.builder().heads(1).length(128).headDim(16).precision(precision).build();
        BlockLayout window = Patterns.parse("window(block=16, blocks=3)").layout(128, 128, 1);
        int[][] counts = {window.counts(0)};
        counts[0][window.rowBegin(0, 4) + 1] = 2;
        add(out, caps, "one count of 2", one, window.withCounts(counts), 3);
        return out;
    }

    private void add(List<AttentionCase> out, Capabilities caps, String name, AttentionProblem problem, BlockLayout layout,
                     int n) {
        if (caps.unsupported(problem, false).isEmpty()) {
            FixedLayoutPattern pattern = new FixedLayoutPattern(layout, name + " (" + layout + ")");
            out.add(AttentionCase.random(name, seed * 41 + n, problem, pattern, layout, TensorLayout.BHSD, TensorLayout.BHSD,
                    TensorLayout.BHSD, TensorLayout.BHSD));
        }
    }

    /**
     * {@code layout} with counts drawn from {@code rnd}: each entry gets one of {@link #COUNTS} with
     * probability {@code share}, the first entry of the last row 300; query block 1 of head layout 0
     * keeps counts of 1 (a row of set semantics in a layout with counts).
     */
    static BlockLayout withCounts(BlockLayout layout, Random rnd, double share) {
        int[][] counts = new int[layout.heads()][];
        for (int hl = 0; hl < counts.length; hl++) {
            counts[hl] = layout.counts(hl);
            for (int p = 0; p < counts[hl].length; p++) {
                boolean setRow = hl == 0 && p >= layout.rowBegin(0, 1) && p < layout.rowEnd(0, 1);
                if (!setRow && rnd.nextDouble() < share) {
                    counts[hl][p] = COUNTS[rnd.nextInt(COUNTS.length)];
                }
            }
            int last = layout.rowBegin(hl, layout.queryBlocks() - 1);
            if (last < counts[hl].length) {
                counts[hl][last] = 300;
            }
        }
        return layout.withCounts(counts);
    }

    /** Rule 41: every case forward, merged from key-block sets and key shards, and backward. */
    double blockCounts(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            Tolerance tol = Tolerance.of(p);
            for (AttentionCase c : cases(caps, p)) {
                boolean lse = caps.has(Feature.LSE);
                Tensor out = c.newOutput();
                float[] l = lse ? c.newLse() : null;
                forward(backend, c, c.problem(), c.layout(), c.k(), c.v(), out, l, "");
                DenseOracle.Result whole = c.expected();
                worst = Math.max(worst, ConformanceRules.requireMatch("case " + c, c, whole, out, l, tol));
                if (lse) {
                    worst = Math.max(worst, keySets(backend, c, whole, tol));
                    if (!c.problem().causal() || caps.has(Feature.CAUSAL_SHIFT)) {
                        worst = Math.max(worst, keyShards(backend, c, whole, tol));
                    }
                }
                if (caps.has(Feature.BACKWARD)) {
                    worst = Math.max(worst, backward(backend, c));
                }
            }
        }
        return worst;
    }

    /** The case's layout cut into two disjoint key-block sets (counts kept), each computed with LSE, merged. */
    private static double keySets(SparseAttention backend, AttentionCase c, DenseOracle.Result whole, Tolerance tol) {
        BlockLayout[] parts = KeySplit.split(c.layout(), 2, new Random(c.seed()));
        Tensor merged = null;
        float[] mergedLse = null;
        for (int x = 0; x < parts.length; x++) {
            Tensor out = c.newOutput();
            float[] lse = c.newLse();
            forward(backend, c, c.problem(), parts[x], c.k(), c.v(), out, lse, ", key-block set " + x + " of 2");
            if (merged == null) {
                merged = out;
                mergedLse = lse;
            } else {
                OnlineSoftmax.merge(merged, mergedLse, out, lse, merged, mergedLse);
            }
        }
        return ConformanceRules.requireMatch("case " + c + " split into 2 disjoint key-block sets, merged", c, whole, merged, mergedLse, tol);
    }

    /** The case's keys cut into three balanced key shards (counts kept), each computed with LSE, merged. */
    private static double keyShards(SparseAttention backend, AttentionCase c, DenseOracle.Result whole, Tolerance tol) {
        KeyShards shards = KeyShards.balanced(c.problem(), c.layout(), Math.min(3, c.layout().keyBlocks()));
        Tensor merged = null;
        float[] mergedLse = null;
        for (int s = 0; s < shards.count(); s++) {
            Tensor out = c.newOutput();
            float[] lse = c.newLse();
            forward(backend, c, shards.problem(s), shards.layout(s), shards.slice(c.k(), s), shards.slice(c.v(), s), out,
                    lse, ", key shard " + s + " of " + shards.count());
            if (merged == null) {
                merged = out;
                mergedLse = lse;
            } else {
                OnlineSoftmax.merge(merged, mergedLse, out, lse, merged, mergedLse);
            }
        }
        return ConformanceRules.requireMatch("case " + c + " cut into " + shards.count() + " key shards, merged", c, whole, merged, mergedLse, tol);
    }

    /** The case through backward on a fresh plan, against the gradient oracle. */
    private static double backward(SparseAttention backend, AttentionCase c) {
        GradientRules.Call call = new GradientRules.Call(c);
        Tensor[] grads = call.newGradients();
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.backward(call.q, call.k, call.v, call.out, call.lse, call.dOut, grads[0], grads[1], grads[2]);
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + c + ": backward threw " + e, Double.NaN);
        }
        Comparison.Outcome o = GradientComparison.compare(call.reached(), call.expected(), grads[0], grads[1], grads[2],
                Tolerance.gradient(c.problem().precision()));
        if (!o.ok()) {
            throw new RuleFailure("case " + c + ", backward: " + o.message(), o.worstRatio());
        }
        return o.worstRatio();
    }

    private static void forward(SparseAttention backend, AttentionCase c, AttentionProblem problem, BlockLayout layout,
                                Tensor k, Tensor v, Tensor out, float[] lse, String which) {
        try (AttentionPlan plan = backend.plan(problem, layout)) {
            plan.forward(c.q(), k, v, out, lse);
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + c + which + " threw " + e, Double.NaN);
        }
    }
}
