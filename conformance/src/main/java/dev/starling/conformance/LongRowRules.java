package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import dev.starling.conformance.CaseGenerator.CaseKind;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.ArrayList;
import java.util.List;

/**
 * Rules 45 to 47 of {@code RULES.md}: what a backend computes differently for long rows (rows of
 * many key blocks, which backends split into several work units, DESIGN section 3b) and for a moved
 * causal rule ({@code causalShift}), checked in the backward pass (45, 46) and in the recombination
 * of a split row's partial results (47). Rule 23 checks the forward of long rows on normal inputs,
 * rule 26 the forward of a moved causal rule; these rules add what those leave out.
 */
final class LongRowRules {
    /** The long rows' key count: more than 16,384 keys, the last key block partial (as rule 23). */
    static final int LONG_KEYS = ConformanceRules.LONG_KEYS;
    /** BigBird at block 64 over {@value #LONG_KEYS} keys: its two global rows read all 257 key blocks. */
    private static final String WIDE_BIGBIRD = "bigbird(block=64, window=3, global=2, random=2, seed=%d)";
    /** BigBird at block 16 over 2,003 keys: its global rows read all 126 key blocks. */
    private static final String SQUARE_BIGBIRD = "bigbird(block=16, window=3, global=2, random=2, seed=%d)";

    private final long seed;

    LongRowRules(long seed) {
        this.seed = seed;
    }

    /** A head dim the backend accepts, as close to {@code want} as its limits allow. */
    private static int headDim(Capabilities caps, int want) {
        return Math.max(caps.minHeadDim(), Math.min(caps.maxHeadDim(), want));
    }

    private PatternSpec pattern(String text) {
        return Patterns.parse(String.format(text, seed & 0xffff));
    }

    /**
     * The long-row problems of rules 45 and 46 in one precision: 2,003 queries and keys at block 16
     * (batch 2, GQA when declared, {@code Dv != D}, a tail of 3 keys; global rows of 126 key blocks),
     * and 1,031 queries over {@value #LONG_KEYS} keys at block 64 (BSHD, MQA and key lengths when
     * declared; global rows of 257 key blocks).
     *
     * @param causal whether the problems are causal
     */
    List<AttentionCase> longRowCases(Capabilities caps, Precision p, boolean causal) {
        boolean gqa = caps.has(Feature.GROUPED_QUERY);
        List<AttentionCase> cases = new ArrayList<>();
        AttentionProblem square = AttentionProblem.builder().batch(2).heads(4).kvHeads(gqa ? 2 : 4).length(2003)
                .headDim(headDim(caps, 16)).valueDim(headDim(caps, 8)).causal(causal).precision(p).build();
        cases.add(AttentionCase.random("long rows nq=nk=2003 block 16" + (gqa ? " gqa" : "") + (causal ? " causal" : ""),
                seed + 45, square, pattern(SQUARE_BIGBIRD), TensorLayout.BHSD, AttentionCase.Values.NORMAL));
        AttentionProblem.Builder wide = AttentionProblem.builder().heads(2).kvHeads(gqa ? 1 : 2).queryLength(1031)
                .keyLength(LONG_KEYS).headDim(headDim(caps, 8)).valueDim(headDim(caps, 8)).causal(causal).precision(p);
        boolean lengths = caps.has(Feature.KEY_LENGTHS);
        if (lengths) {
            wide.keyLengths(LONG_KEYS - 300);
        }
        cases.add(AttentionCase.random("long rows nq 1031 nk " + LONG_KEYS + " block 64" + (gqa ? " mqa" : "")
                        + (lengths ? " key lengths" : "") + (causal ? " causal" : ""), seed + 46, wide.build(),
                pattern(WIDE_BIGBIRD), TensorLayout.BSHD, AttentionCase.Values.NORMAL));
        return cases;
    }

    /** The cases among {@code cases} the backend can run backward on. */
    private static List<AttentionCase> backwardSupported(Capabilities caps, List<AttentionCase> cases) {
        return cases.stream().filter(c -> caps.unsupported(c.problem(), false, true).isEmpty()).toList();
    }

    /**
     * Rule 45: the backward of long rows (BigBird's global rows, 126 and 257 key blocks, which backends
     * split into several work units), every element of {@code dq}, {@code dk} and {@code dv} against
     * the gradient oracle, in every declared precision.
     */
    double gradientLongRows(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            worst = Math.max(worst, GradientRules.againstOracle(backend, backwardSupported(caps, longRowCases(caps, p,
                    false))));
        }
        return worst;
    }

    /**
     * The problems of rule 46 in one precision: a causal problem with the rule moved explicitly
     * (shifts {@code −20}, {@code 37} and {@code Nk + 30}), the causal cases of rule 26 and the causal
     * long-row cases, each cut into key shards ({@link KeyShards}: the causal rule moved by each shard's
     * first key), every shard a problem of its own.
     */
    List<AttentionCase> shiftedCases(Capabilities caps, Precision p) {
        List<AttentionCase> cases = new ArrayList<>();
        AttentionProblem base = AttentionProblem.builder().heads(2).queryLength(90).keyLength(100).headDim(16)
                .causal(true).precision(p).build();
        PatternSpec bigbird = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=11)");
        for (int shift : new int[] {-20, 37, 130}) {
            AttentionProblem shifted = base.toBuilder().causalShift(shift).build();
            cases.add(AttentionCase.random("causal nq 90 nk 100, causal shift " + shift, seed + 460 + shift, shifted,
                    bigbird, TensorLayout.BHSD, AttentionCase.Values.NORMAL));
        }
        List<AttentionCase> toCut = new ArrayList<>(CaseGenerator.cases(CaseKind.KEY_SHARDS, seed, p).stream()
                .filter(c -> c.problem().causal() || c.layout().causal()).toList());
        toCut.addAll(longRowCases(caps, p, true));
        for (AttentionCase c : toCut) {
            KeyShards shards = KeyShards.balanced(c.problem(), c.layout(), 3);
            for (int s = 0; s < shards.count(); s++) {
                AttentionProblem problem = shards.problem(s);
                cases.add(new AttentionCase(c.name() + ", key shard " + s + " of " + shards.count() + " (keys "
                        + shards.firstKey(s) + " to " + (shards.firstKey(s) + shards.keyCount(s) - 1) + ", causal shift "
                        + problem.causalShift() + ")", c.seed(), problem, c.pattern(), shards.layout(s), c.q(),
                        shards.slice(c.k(), s), shards.slice(c.v(), s), c.outLayout()));
            }
        }
        return cases;
    }

    /**
     * Rule 46: backward with a moved causal rule ({@code causalShift}), every element against the
     * gradient oracle of the same problem, in every declared precision.
     */
    double gradientCausalShift(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            worst = Math.max(worst, GradientRules.againstOracle(backend, backwardSupported(caps, shiftedCases(caps, p))));
        }
        return worst;
    }

    /**
     * The problems of rule 47 in one precision, whose long rows' parts have maxima thousands apart:
     * small-integer inputs and a power-of-two scale (scores exact in float32, up to about {@code ±8e3}).
     * BigBird at block 16 over 4,099 queries and keys (global rows of 257 key blocks, GQA when
     * declared), a dense layout of 67 queries over {@value #LONG_KEYS} keys at block 64 with a
     * negative scale (every row 257 key blocks, BSHD), and the same BigBird with normal inputs.
     */
    List<AttentionCase> splitRowCases(Capabilities caps, Precision p) {
        boolean gqa = caps.has(Feature.GROUPED_QUERY);
        List<AttentionCase> cases = new ArrayList<>();
        AttentionProblem normal = AttentionProblem.builder().heads(2).kvHeads(gqa ? 1 : 2).length(4099)
                .headDim(headDim(caps, 8)).valueDim(headDim(caps, 8)).precision(p).build();
        AttentionProblem square = normal.toBuilder().scale(16f).build();
        cases.add(AttentionCase.random("split rows nq=nk=4099 block 16, scores to 8e3 (scale 16)" + (gqa ? " mqa" : ""),
                seed + 47, square, pattern(SQUARE_BIGBIRD), TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
        AttentionProblem dense = AttentionProblem.builder().heads(1).queryLength(67).keyLength(LONG_KEYS)
                .headDim(headDim(caps, 8)).valueDim(headDim(caps, 12)).scale(-16f).precision(p).build();
        cases.add(AttentionCase.random("split rows dense nq 67 nk " + LONG_KEYS + ", scores to -8e3 (scale -16)",
                seed + 48, dense, Patterns.parse("dense(block=64)"), TensorLayout.BSHD,
                AttentionCase.Values.SMALL_INTEGERS));
        cases.add(AttentionCase.random("split rows nq=nk=4099 block 16, normal inputs", seed + 49, normal,
                pattern(SQUARE_BIGBIRD), TensorLayout.BHSD, AttentionCase.Values.NORMAL));
        return cases;
    }

    /**
     * Rule 47: long rows whose parts' maxima lie thousands apart, the output (and LSE when declared)
     * against the oracle: a backend that recombines a split row's partial results with the wrong
     * maximum overflows, one that forgets to rescale a part gets the weights wrong.
     */
    double splitRowsRecombine(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        boolean withLse = caps.has(Feature.LSE);
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : splitRowCases(caps, p)) {
                if (caps.unsupported(c.problem(), withLse).isPresent()) {
                    continue;
                }
                Tensor out = c.newOutput();
                float[] lse = withLse ? c.newLse() : null;
                try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
                    plan.forward(c.q(), c.k(), c.v(), out, lse);
                } catch (RuntimeException e) {
                    throw new RuleFailure("case " + c + " threw " + e, Double.NaN);
                }
                worst = Math.max(worst, ConformanceRules.requireMatch("case " + c, c, c.expected(), out, lse,
                        Tolerance.of(p)));
            }
        }
        return worst;
    }
}
