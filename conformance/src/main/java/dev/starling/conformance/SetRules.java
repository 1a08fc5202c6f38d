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
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Rules 48 and 49 of {@code RULES.md}: the allowed set {@code A(b, h, i)} of DESIGN section 2 is a
 * set. No key is counted twice where the parts of a pattern overlap (48), and every allowed key
 * contributes its weight, however small (49).
 */
final class SetRules {
    /**
     * What rule 49 writes into one feature of a value vector: {@code 2^30}, exact in every
     * precision, so a weight down to about {@code 1e-13} moves the output by more than the tolerance.
     */
    static final float PERTURBATION = 0x1p30f;

    private final long seed;

    SetRules(long seed) {
        this.seed = seed;
    }

    /** Patterns whose parts overlap; each layout is the set union, every key once. */
    static final List<String> OVERLAPPING = List.of(
            "union(window(block=16, blocks=3), random(block=16, blocks=3, seed=4))",
            "union(window(block=16, blocks=5), global(block=16, first=1, last=1))",
            "union(window(block=16, blocks=3), window(block=16, blocks=5), strided(block=16, stride=3))",
            "union(bigbird(block=16, window=3, global=2, random=3, seed=2), dense(block=16))",
            "longformer(block=16, window=5, global=[0, 1, 2])",
            "union(fixed(block=16, local=4, global=1), window(block=16, blocks=3), global(block=16, first=2, last=0))");

    /**
     * The cases of rule 48 in one precision: each overlapping pattern over 150 queries and 173 keys
     * (tails), the causal diagonal of an overlapping union (a {@code causal(P)} layout, and a causal
     * problem, when declared), and the union of two overlapping layouts built from block lists
     * ({@link BlockLayout#ofLists}: every count 1), per head with GQA when declared.
     */
    List<AttentionCase> overlapCases(Capabilities caps, Precision p) {
        boolean gqa = caps.has(Feature.GROUPED_QUERY);
        AttentionProblem base = AttentionProblem.builder().heads(2).queryLength(150).keyLength(173).headDim(16)
                .precision(p).build();
        List<AttentionCase> cases = new ArrayList<>();
        long s = seed + 48;
        for (String text : OVERLAPPING) {
            cases.add(AttentionCase.random("overlapping parts " + text, s++, base, Patterns.parse(text),
                    TensorLayout.BHSD, AttentionCase.Values.NORMAL));
        }
        PatternSpec diagonal = Patterns.parse("causal(union(window(block=16, blocks=3), global(block=16, first=1, "
                + "last=1), random(block=16, blocks=2, seed=9)))");
        cases.add(AttentionCase.random("causal diagonals of overlapping parts", s++, base.toBuilder().length(160).build(),
                diagonal, TensorLayout.BSHD, AttentionCase.Values.NORMAL));
        if (caps.has(Feature.CAUSAL)) {
            cases.add(AttentionCase.random("causal problem over overlapping parts", s++, base.toBuilder().causal(true)
                    .build(), Patterns.parse(OVERLAPPING.get(1)), TensorLayout.BHSD, AttentionCase.Values.NORMAL));
        }
        AttentionProblem grouped = base.toBuilder().heads(4).kvHeads(gqa ? 2 : 4).build();
        BlockLayout a = Patterns.parse("random(block=16, blocks=4, seed=6)").layout(150, 173, 4);
        BlockLayout b = Patterns.parse("window(block=16, blocks=3)").layout(150, 173, 4);
        cases.add(case_("union of overlapping block lists, counts all 1" + (gqa ? ", gqa" : ""), s, grouped,
                union(a, b, 4)));
        return cases;
    }

    /** A case over an explicit layout. */
    private static AttentionCase case_(String name, long seed, AttentionProblem p, BlockLayout layout) {
        return AttentionCase.random(name, seed, p, new FixedLayoutPattern(layout, "union of two block lists"),
                TensorLayout.BHSD, AttentionCase.Values.NORMAL);
    }

    /** The set union of two layouts of the same lengths and block sizes, per query head, from distinct block lists. */
    private static BlockLayout union(BlockLayout a, BlockLayout b, int heads) {
        int[][][] lists = new int[heads][a.queryBlocks()][];
        for (int h = 0; h < heads; h++) {
            for (int qb = 0; qb < a.queryBlocks(); qb++) {
                java.util.TreeSet<Integer> row = new java.util.TreeSet<>();
                for (BlockLayout l : new BlockLayout[] {a, b}) {
                    for (int at = l.rowBegin(h, qb); at < l.rowEnd(h, qb); at++) {
                        row.add(l.keyBlock(h, at));
                    }
                }
                lists[h][qb] = row.stream().mapToInt(Integer::intValue).toArray();
            }
        }
        return BlockLayout.ofLists(a.queryLength(), a.keyLength(), a.queryBlock(), a.keyBlock(), false, lists, heads);
    }

    /** Runs a case on a fresh plan. */
    private static void forward(SparseAttention backend, AttentionCase c, Tensor q, Tensor k, Tensor v, Tensor out,
                                float[] lse, String what) {
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.forward(q, k, v, out, lse);
        } catch (RuntimeException e) {
            throw new RuleFailure(what + " threw " + e, Double.NaN);
        }
    }

    /**
     * Rule 48: layouts whose parts overlap (random blocks inside the window, globals in the window, unions of
     * overlapping patterns, causal diagonals), output and LSE against the oracle of the set.
     */
    double keysCountedOnce(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        boolean withLse = caps.has(Feature.LSE);
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : overlapCases(caps, p)) {
                if (caps.unsupported(c.problem(), withLse).isPresent()) {
                    continue;
                }
                Tensor out = c.newOutput();
                float[] lse = withLse ? c.newLse() : null;
                forward(backend, c, c.q(), c.k(), c.v(), out, lse, "case " + c);
                worst = Math.max(worst, ConformanceRules.requireMatch("case " + c + " (the oracle counts each allowed key "
                        + "once)", c, c.expected(), out, lse, Tolerance.of(p)));
            }
        }
        return worst;
    }

    /**
     * The cases of rule 49 in one precision: small-integer inputs and scale 1/4 (scores exact, a row's
     * scores tens apart, so most allowed keys weigh {@code e^-16} to {@code e^-40}): BigBird over 200
     * queries and keys, an overlapping union over 150 queries and 173 keys with GQA, BSHD and key
     * lengths when declared, and causal BigBird with {@code Nq < Nk} when declared.
     */
    List<AttentionCase> perturbationCases(Capabilities caps, Precision p) {
        List<AttentionCase> cases = new ArrayList<>();
        AttentionProblem base = AttentionProblem.builder().heads(2).length(200).headDim(16).scale(0.25f).precision(p)
                .build();
        PatternSpec bigbird = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=8)");
        cases.add(AttentionCase.random("bigbird nq=nk=200, weights down to e^-40", seed + 49, base, bigbird,
                TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
        AttentionProblem.Builder tails = base.toBuilder().heads(4).kvHeads(caps.has(Feature.GROUPED_QUERY) ? 2 : 4)
                .queryLength(150).keyLength(173);
        if (caps.has(Feature.KEY_LENGTHS)) {
            tails.batch(2).keyLengths(173, 101);
        }
        cases.add(AttentionCase.random("overlapping union nq 150 nk 173" + (caps.has(Feature.KEY_LENGTHS)
                        ? " key lengths" : ""), seed + 50, tails.build(), Patterns.parse(OVERLAPPING.get(1)),
                TensorLayout.BSHD, AttentionCase.Values.SMALL_INTEGERS));
        if (caps.has(Feature.CAUSAL)) {
            cases.add(AttentionCase.random("causal bigbird nq 120 nk 200", seed + 51, base.toBuilder().queryLength(120)
                    .causal(true).build(), bigbird, TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
        }
        return cases;
    }

    /**
     * Rule 49: every key of every case is perturbed once: feature {@code j mod Dv} of every key
     * {@code j} in one call is set to {@link #PERTURBATION} ({@code Dv} keys a call, one per feature,
     * in every key/value head and batch entry), and the output must match the oracle on the perturbed
     * inputs. A row's feature {@code d} then moves by {@code P_ij·2^30} for the key {@code j} perturbed
     * in it: a key the backend leaves out shows as soon as its weight is above about {@code 1e-13}.
     */
    double everyKeyContributes(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        boolean withLse = caps.has(Feature.LSE);
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : perturbationCases(caps, p)) {
                if (caps.unsupported(c.problem(), withLse).isPresent()) {
                    continue;
                }
                AttentionProblem pr = c.problem();
                int vdim = pr.valueDim();
                for (int first = 0; first < pr.keyLength(); first += vdim) {
                    Tensor v = c.v().copy();
                    int last = Math.min(pr.keyLength(), first + vdim) - 1;
                    for (int b = 0; b < pr.batch(); b++) {
                        for (int h = 0; h < pr.kvHeads(); h++) {
                            for (int j = first; j <= last; j++) {
                                v.data()[v.offset(b, h, j) + j % vdim] = PERTURBATION;
                            }
                        }
                    }
                    String what = String.format(Locale.ROOT, "case %s with v[:, :, j, j mod %d] = 2^30 for keys j = %d to "
                            + "%d (every row reading one of them must move by its weight times 2^30)", c, vdim, first, last);
                    Tensor out = c.newOutput();
                    float[] lse = withLse ? c.newLse() : null;
                    forward(backend, c, c.q(), c.k(), v, out, lse, what);
                    DenseOracle.Result expected = DenseOracle.compute(pr, c.layout(), c.q(), c.k(), v);
                    worst = Math.max(worst, ConformanceRules.requireMatch(what, c, expected, out, lse, Tolerance.of(p)));
                }
            }
        }
        return worst;
    }
}
