package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.conformance.CaseGenerator.Feature;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The rules of {@code RULES.md}, without any test framework: {@link #check(Rule)} runs one rule
 * against the backend and returns its result. {@link SparseAttentionContract} (JUnit) and
 * {@link ConformanceRunner} ({@code starling conformance}) both call this.
 */
public final class ConformanceRules {
    /** The default base seed of every generated case. */
    public static final long DEFAULT_SEED = 20261128L;
    /** The heap the linear-memory rule gives the 65,536-token case. */
    public static final String MEMORY_RULE_HEAP = "-Xmx1g";
    private static final float POISON = 1.2345e30f;

    private final Supplier<SparseAttention> factory;
    private final long seed;

    /**
     * @param factory creates the backend under test (called once per rule)
     * @param seed base seed of the generated cases
     */
    public ConformanceRules(Supplier<SparseAttention> factory, long seed) {
        this.factory = factory;
        this.seed = seed;
    }

    /** Thrown inside a rule to end it with a failure. */
    private static final class RuleFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final double worst;
        final long caseSeed;

        RuleFailure(String message, double worst, long caseSeed) {
            super(message, null, false, false);
            this.worst = worst;
            this.caseSeed = caseSeed;
        }
    }

    /**
     * Runs one rule.
     *
     * @param rule the rule
     * @return pass, fail (with the worst element and the seed) or skipped (with the reason)
     */
    public RuleResult check(Rule rule) {
        SparseAttention backend = factory.get();
        if (!backend.availability().isAvailable()) {
            return RuleResult.skip(rule, "backend '" + backend.name() + "' is " + backend.availability());
        }
        Capabilities caps = backend.capabilities();
        String missing = missingCapability(rule, caps);
        if (missing != null) {
            return RuleResult.skip(rule, "backend does not declare " + missing + "; declare it to run this rule");
        }
        try {
            double worst = switch (rule) {
                case R01_OUTPUT_MATCHES_ORACLE -> feature(backend, Feature.CORE, false);
                case R02_PARTIAL_TAIL_BLOCKS -> feature(backend, Feature.TAILS, false);
                case R03_CAUSAL -> feature(backend, Feature.CAUSAL, false);
                case R04_GROUPED_QUERY -> feature(backend, Feature.GROUPED_QUERY, false);
                case R05_KEY_AND_QUERY_LENGTHS -> feature(backend, Feature.LENGTHS, false);
                case R06_LSE -> Math.max(feature(backend, Feature.CORE, true), feature(backend, Feature.TAILS, true));
                case R07_HUGE_LOGITS -> feature(backend, Feature.HUGE_LOGITS, false);
                case R08_EMPTY_ROWS -> emptyRows(backend);
                case R09_EVERY_ELEMENT_WRITTEN -> everyElementWritten(backend);
                case R10_INPUTS_NOT_MODIFIED -> inputsNotModified(backend);
                case R11_DETERMINISTIC -> deterministic(backend);
                case R12_THREAD_SAFE -> threadSafe(backend);
                case R13_MASKED_NAN_NEVER_LEAKS -> maskedNan(backend);
                case R14_ALLOWED_NAN_REACHES_ITS_ROWS -> allowedNan(backend);
                case R15_BAD_INPUT_REFUSED -> badInput(backend);
                case R16_FORWARD_AFTER_CLOSE -> forwardAfterClose(backend);
                case R17_UNDECLARED_FEATURES_THROW -> undeclaredFeatures(backend);
                case R18_TENSOR_LAYOUTS -> feature(backend, Feature.TENSOR_LAYOUTS, false);
                case R19_LINEAR_MEMORY -> linearMemory(backend);
                case R20_NON_FINITE_INPUTS -> nonFiniteInputs(backend);
                case R21_KEY_SPLITS_MERGE -> keySplitsMerge(backend);
            };
            return RuleResult.pass(rule, worst);
        } catch (RuleFailure f) {
            return RuleResult.fail(rule, f.getMessage(), f.worst, f.caseSeed);
        } catch (RuntimeException | Error e) {
            StackTraceElement[] at = e.getStackTrace();
            return RuleResult.fail(rule, "unexpected " + e + (at.length > 0 ? " at " + at[0] : ""), Double.NaN, 0);
        }
    }

    /** @return the capability an optional rule needs and the backend lacks, or null */
    static String missingCapability(Rule rule, Capabilities caps) {
        return switch (rule) {
            case R03_CAUSAL -> caps.causal() ? null : "CAUSAL";
            case R04_GROUPED_QUERY -> caps.groupedQuery() ? null : "GROUPED_QUERY";
            case R05_KEY_AND_QUERY_LENGTHS -> caps.keyLengths() && caps.queryLengths() ? null : "KEY_LENGTHS and QUERY_LENGTHS";
            case R06_LSE, R21_KEY_SPLITS_MERGE -> caps.lse() ? null : "LSE";
            default -> null;
        };
    }

    private List<AttentionCase> supported(Capabilities caps, Feature feature, Precision precision) {
        List<AttentionCase> out = new ArrayList<>();
        for (AttentionCase c : CaseGenerator.cases(feature, seed, precision)) {
            if (caps.unsupported(c.problem(), false).isEmpty()) {
                out.add(c);
            }
        }
        return out;
    }

    /** Runs a case on a fresh plan. */
    private static void run(SparseAttention backend, AttentionCase c, Tensor out, float[] lse) {
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + c + " threw " + e, Double.NaN, c.seed());
        }
    }

    private static double compare(AttentionCase c, DenseOracle.Result expected, Tensor out, float[] lse) {
        Comparison.Outcome o = Comparison.compare(c.problem(), expected, out, lse, Tolerance.of(c.problem().precision()));
        if (!o.ok()) {
            throw new RuleFailure("case " + c + ": " + o.message(), o.worstRatio(), c.seed());
        }
        return o.worstRatio();
    }

    private double feature(SparseAttention backend, Feature feature, boolean withLse) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : supported(caps, feature, p)) {
                Tensor out = c.newOutput();
                float[] lse = withLse ? c.newLse() : null;
                run(backend, c, out, lse);
                worst = Math.max(worst, compare(c, c.expected(), out, lse));
            }
        }
        return worst;
    }

    private double emptyRows(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            List<AttentionCase> cases = new ArrayList<>(supported(caps, Feature.EMPTY_ROWS, p));
            if (caps.causal()) {
                cases.addAll(supported(caps, Feature.CAUSAL, p).stream().filter(c -> c.name().contains("no key")).toList());
            }
            if (caps.keyLengths() && caps.queryLengths()) {
                cases.addAll(supported(caps, Feature.LENGTHS, p).stream().filter(c -> c.name().contains("zero")).toList());
            }
            for (AttentionCase c : cases) {
                Tensor out = c.newOutput();
                float[] lse = caps.lse() ? c.newLse() : null;
                run(backend, c, out, lse);
                DenseOracle.Result expected = c.expected();
                AttentionProblem pr = c.problem();
                for (int row = 0; row < expected.lse().length; row++) {
                    if (expected.lse()[row] != Double.NEGATIVE_INFINITY) {
                        continue;
                    }
                    int i = row % pr.queryLength();
                    int h = row / pr.queryLength() % pr.queryHeads();
                    int b = row / pr.queryLength() / pr.queryHeads();
                    for (int d = 0; d < pr.valueDim(); d++) {
                        float got = out.get(b, h, i, d);
                        if (Float.floatToRawIntBits(got) != 0) {
                            throw new RuleFailure("case " + c + ": row (b=" + b + ", h=" + h + ", i=" + i
                                    + ") has no allowed key, so O must be +0.0, but d=" + d + " is " + got, Double.NaN, c.seed());
                        }
                    }
                    if (lse != null && lse[row] != Float.NEGATIVE_INFINITY) {
                        throw new RuleFailure("case " + c + ": row (b=" + b + ", h=" + h + ", i=" + i
                                + ") has no allowed key, so LSE must be -Infinity, but is " + lse[row], Double.NaN, c.seed());
                    }
                }
                worst = Math.max(worst, compare(c, expected, out, lse));
            }
        }
        return worst;
    }

    private double everyElementWritten(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        Precision p = caps.precisions().iterator().next();
        List<AttentionCase> cases = new ArrayList<>(supported(caps, Feature.EMPTY_ROWS, p));
        cases.addAll(supported(caps, Feature.TAILS, p));
        cases.addAll(supported(caps, Feature.LENGTHS, p));
        cases.addAll(supported(caps, Feature.TENSOR_LAYOUTS, p));
        if (caps.causal()) {
            cases.addAll(supported(caps, Feature.CAUSAL, p));
        }
        for (AttentionCase c : cases) {
            Tensor out = c.newOutput();
            Arrays.fill(out.data(), POISON);
            float[] lse = caps.lse() ? c.newLse() : null;
            if (lse != null) {
                Arrays.fill(lse, POISON);
            }
            run(backend, c, out, lse);
            AttentionProblem pr = c.problem();
            for (int b = 0; b < pr.batch(); b++) {
                for (int h = 0; h < pr.queryHeads(); h++) {
                    for (int i = 0; i < pr.queryLength(); i++) {
                        for (int d = 0; d < pr.valueDim(); d++) {
                            if (out.get(b, h, i, d) == POISON) {
                                throw new RuleFailure("case " + c + ": output (b=" + b + ", h=" + h + ", i=" + i + ", d=" + d
                                        + ") was never written (still holds the poison " + POISON + ")", Double.NaN, c.seed());
                            }
                        }
                        if (lse != null && lse[(b * pr.queryHeads() + h) * pr.queryLength() + i] == POISON) {
                            throw new RuleFailure("case " + c + ": lse (b=" + b + ", h=" + h + ", i=" + i
                                    + ") was never written", Double.NaN, c.seed());
                        }
                    }
                }
            }
        }
        return Double.NaN;
    }

    private double inputsNotModified(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        for (Precision p : caps.precisions()) {
            List<AttentionCase> cases = new ArrayList<>(supported(caps, Feature.CORE, p).subList(0, 3));
            cases.addAll(supported(caps, Feature.TENSOR_LAYOUTS, p));
            cases.addAll(supported(caps, Feature.TAILS, p));
            for (AttentionCase c : cases) {
                float[][] before = {c.q().data().clone(), c.k().data().clone(), c.v().data().clone()};
                run(backend, c, c.newOutput(), caps.lse() ? c.newLse() : null);
                String[] names = {"q", "k", "v"};
                float[][] after = {c.q().data(), c.k().data(), c.v().data()};
                for (int t = 0; t < 3; t++) {
                    int at = Arrays.mismatch(before[t], after[t]);
                    if (at >= 0) {
                        throw new RuleFailure("case " + c + ": input " + names[t] + " was modified at flat index " + at + ": "
                                + before[t][at] + " became " + after[t][at], Double.NaN, c.seed());
                    }
                }
            }
        }
        return Double.NaN;
    }

    private AttentionCase mediumCase(Capabilities caps) {
        Precision p = caps.precisions().iterator().next();
        List<AttentionCase> core = supported(caps, Feature.CORE, p);
        return core.get(core.size() - 1);
    }

    private double deterministic(SparseAttention backend) {
        AttentionCase c = mediumCase(backend.capabilities());
        Tensor first = c.newOutput();
        Tensor second = c.newOutput();
        Tensor third = c.newOutput();
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), first);
            plan.forward(c.q(), c.k(), c.v(), second);
        }
        run(backend, c, third, null);
        requireBitIdentical(c, first, second, "a second call on the same plan");
        requireBitIdentical(c, first, third, "a call on a new plan");
        return Double.NaN;
    }

    private static void requireBitIdentical(AttentionCase c, Tensor expected, Tensor got, String what) {
        for (int i = 0; i < expected.data().length; i++) {
            if (Float.floatToRawIntBits(expected.data()[i]) != Float.floatToRawIntBits(got.data()[i])) {
                throw new RuleFailure("case " + c + ": " + what + " gave " + got.data()[i] + " at flat index " + i
                        + " where the first call gave " + expected.data()[i], Double.NaN, c.seed());
            }
        }
    }

    private double threadSafe(SparseAttention backend) {
        AttentionCase c = mediumCase(backend.capabilities());
        Tensor reference = c.newOutput();
        ExecutorService callers = Executors.newFixedThreadPool(4);
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), reference);
            List<Future<List<Tensor>>> futures = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                futures.add(callers.submit(() -> {
                    List<Tensor> outs = new ArrayList<>();
                    for (int rep = 0; rep < 6; rep++) {
                        Tensor out = c.newOutput();
                        plan.forward(c.q(), c.k(), c.v(), out);
                        outs.add(out);
                    }
                    return outs;
                }));
            }
            for (Future<List<Tensor>> f : futures) {
                for (Tensor out : f.get(10, TimeUnit.MINUTES)) {
                    requireBitIdentical(c, reference, out, "a call from one of four concurrent threads");
                }
            }
        } catch (RuleFailure e) {
            throw e;
        } catch (Exception e) {
            throw new RuleFailure("case " + c + ": concurrent forward failed: " + e, Double.NaN, c.seed());
        } finally {
            callers.shutdownNow();
        }
        return Double.NaN;
    }

    /** A case whose inputs are replaced by a copy where {@code poison} set NaN somewhere. */
    private static AttentionCase withNan(AttentionCase c, Function<AttentionCase, String> poison, StringBuilder what) {
        AttentionCase copy = new AttentionCase(c.name(), c.seed(), c.problem(), c.pattern(), c.layout(), c.q().copy(),
                c.k().copy(), c.v().copy());
        what.append(poison.apply(copy));
        return copy;
    }

    private double checkNanCase(SparseAttention backend, AttentionCase c, String where) {
        Tensor out = c.newOutput();
        run(backend, c, out, null);
        DenseOracle.Result expected = c.expected();
        Comparison.Outcome o = Comparison.compare(c.problem(), expected, out, null, Tolerance.of(c.problem().precision()));
        if (!o.ok()) {
            throw new RuleFailure("case " + c + " with NaN in " + where + ": " + o.message()
                    + " (a NaN row where the oracle has a number means NaN leaked into a row that may not see it)",
                    o.worstRatio(), c.seed());
        }
        return o.worstRatio();
    }

    /** 256 tokens at block 16: sparse enough that most rows miss most key blocks. */
    private AttentionCase sparseCase(Precision p) {
        return AttentionCase.random("sparse bigbird", seed + 13, AttentionProblem.builder().heads(2).length(256)
                        .headDim(16).precision(p).build(),
                Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=5)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
    }

    private double maskedNan(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        Precision p = caps.precisions().iterator().next();
        double worst = 0;
        AttentionCase bigbird = sparseCase(p);
        // A key block that some rows may not see: NaN in all its keys and values.
        BlockLayout l = bigbird.layout();
        int target = -1;
        int bestUnseen = 0;
        for (int kb = 0; kb < l.keyBlocks(); kb++) {
            int unseen = 0;
            for (int h = 0; h < bigbird.problem().queryHeads(); h++) {
                for (int qb = 0; qb < l.queryBlocks(); qb++) {
                    unseen += l.allowed(h, qb, kb) ? 0 : 1;
                }
            }
            if (unseen > bestUnseen) {
                bestUnseen = unseen;
                target = kb;
            }
        }
        if (target < 0) {
            throw new IllegalStateException("kit error: every key block is seen by every row of " + bigbird);
        }
        int kb = target;
        int unseenRows = bestUnseen;
        StringBuilder what = new StringBuilder();
        AttentionCase outside = withNan(bigbird, c -> {
            fillKeys(c, 0, kb * l.keyBlock(), Math.min(c.problem().keyLength(), (kb + 1) * l.keyBlock()), Float.NaN);
            return "key block " + kb + " (outside the pattern for " + unseenRows + " head rows)";
        }, what);
        worst = Math.max(worst, checkNanCase(backend, outside, what.toString()));
        if (caps.keyLengths()) {
            AttentionCase lengths = supported(caps, Feature.LENGTHS, p).stream().filter(c -> c.name().equals("key lengths"))
                    .findFirst().orElseThrow();
            StringBuilder w2 = new StringBuilder();
            AttentionCase padded = withNan(lengths, c -> {
                int[] kl = c.problem().keyLengths();
                for (int b = 0; b < c.problem().batch(); b++) {
                    fillKeys(c, b, kl[b], c.problem().keyLength(), Float.NaN);
                }
                return "the key padding past keyLengths " + Arrays.toString(kl);
            }, w2);
            worst = Math.max(worst, checkNanCase(backend, padded, w2.toString()));
        }
        if (caps.causal()) {
            AttentionCase causal = supported(caps, Feature.CAUSAL, p).get(0);
            StringBuilder w3 = new StringBuilder();
            AttentionCase future = withNan(causal, c -> {
                int n = c.problem().keyLength();
                fillKeys(c, 0, n - 5, n, Float.NaN);
                return "the last 5 keys (future keys for all but the last rows)";
            }, w3);
            worst = Math.max(worst, checkNanCase(backend, future, w3.toString()));
        }
        return worst;
    }

    private double allowedNan(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        Precision p = caps.precisions().iterator().next();
        AttentionCase bigbird = sparseCase(p);
        double worst = 0;
        for (int j : new int[] {37, bigbird.problem().keyLength() - 1}) {
            StringBuilder what = new StringBuilder();
            AttentionCase one = withNan(bigbird, c -> {
                for (int h = 0; h < c.problem().kvHeads(); h++) {
                    c.k().data()[c.k().offset(0, h, j) + 3] = Float.NaN;
                }
                return "k[0, :, " + j + ", 3]";
            }, what);
            worst = Math.max(worst, checkNanCase(backend, one, what.toString()));
        }
        return worst;
    }

    private static void fillKeys(AttentionCase c, int b, int from, int to, float value) {
        for (int h = 0; h < c.problem().kvHeads(); h++) {
            for (int j = from; j < to; j++) {
                Arrays.fill(c.k().data(), c.k().offset(b, h, j), c.k().offset(b, h, j) + c.problem().headDim(), value);
                Arrays.fill(c.v().data(), c.v().offset(b, h, j), c.v().offset(b, h, j) + c.problem().valueDim(), value);
            }
        }
    }

    private double badInput(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        AttentionCase c = supported(caps, Feature.CORE, caps.precisions().iterator().next()).get(4);
        AttentionProblem pr = c.problem();
        int b = pr.batch();
        int hq = pr.queryHeads();
        int hkv = pr.kvHeads();
        int nq = pr.queryLength();
        int nk = pr.keyLength();
        int d = pr.headDim();
        int dv = pr.valueDim();
        TensorLayout bhsd = TensorLayout.BHSD;
        Tensor q = c.q();
        Tensor k = c.k();
        Tensor v = c.v();
        Tensor out = c.newOutput();
        Arrays.fill(out.data(), POISON);
        float[] goodLse = caps.lse() ? new float[pr.lseSize()] : null;
        Object[][] calls = {
            {"q with head dim D+1", Tensor.zeros(bhsd, b, hq, nq, d + 1), k, v, out, goodLse},
            {"q with batch B+1", Tensor.zeros(bhsd, b + 1, hq, nq, d), k, v, out, goodLse},
            {"q with Nq-1 rows", Tensor.zeros(bhsd, b, hq, nq - 1, d), k, v, out, goodLse},
            {"k with Nk-1 keys", q, Tensor.zeros(bhsd, b, hkv, nk - 1, d), v, out, goodLse},
            {"k with Hkv+1 heads", q, Tensor.zeros(bhsd, b, hkv + 1, nk, d), v, out, goodLse},
            {"k with head dim D-1", q, Tensor.zeros(bhsd, b, hkv, nk, d - 1), v, out, goodLse},
            {"v with Nk+1 keys", q, k, Tensor.zeros(bhsd, b, hkv, nk + 1, dv), out, goodLse},
            {"v with value dim Dv+1", q, k, Tensor.zeros(bhsd, b, hkv, nk, dv + 1), out, goodLse},
            {"out with Hq+1 heads", q, k, v, Tensor.zeros(bhsd, b, hq + 1, nq, dv), goodLse},
            {"lse with one float too few", q, k, v, out, new float[pr.lseSize() - 1]},
            {"null q", null, k, v, out, goodLse},
            {"null k", q, null, v, out, goodLse},
            {"null v", q, k, null, out, goodLse},
            {"null out", q, k, v, null, goodLse},
        };
        try (AttentionPlan plan = backend.plan(pr, c.layout())) {
            for (Object[] call : calls) {
                if (call[5] != null && !caps.lse()) {
                    continue;
                }
                Tensor target = call[4] == null ? null : (Tensor) call[4];
                if (target != null && target != out) {
                    Arrays.fill(target.data(), POISON);
                }
                RuntimeException thrown = null;
                try {
                    plan.forward((Tensor) call[1], (Tensor) call[2], (Tensor) call[3], target, (float[]) call[5]);
                } catch (RuntimeException e) {
                    thrown = e;
                }
                String what = "forward with " + call[0];
                if (!(thrown instanceof IllegalArgumentException)) {
                    throw new RuleFailure(what + " must throw IllegalArgumentException but "
                            + (thrown == null ? "returned normally" : "threw " + thrown), Double.NaN, c.seed());
                }
                if (target != null) {
                    for (float f : target.data()) {
                        if (f != POISON) {
                            throw new RuleFailure(what + " wrote into the output before refusing", Double.NaN, c.seed());
                        }
                    }
                }
            }
        }
        BlockLayout otherLengths = c.pattern().layout(nq + 16, nk + 16, hq);
        BlockLayout[] badLayouts = {otherLengths, null};
        String[] layoutNames = {"a layout built for Nq+16, Nk+16", "a null layout"};
        for (int i = 0; i < badLayouts.length; i++) {
            RuntimeException thrown = null;
            try (AttentionPlan plan = backend.plan(pr, badLayouts[i])) {
                plan.getClass();
            } catch (RuntimeException e) {
                thrown = e;
            }
            if (!(thrown instanceof IllegalArgumentException)) {
                throw new RuleFailure("plan with " + layoutNames[i] + " must throw IllegalArgumentException but "
                        + (thrown == null ? "returned a plan" : "threw " + thrown), Double.NaN, c.seed());
            }
        }
        BlockLayout perHeadForMore = Patterns.parse("random(block=16, blocks=2)").layout(nq, nk, hq + 2);
        RuntimeException thrown = null;
        try (AttentionPlan plan = backend.plan(pr, perHeadForMore)) {
            plan.getClass();
        } catch (RuntimeException e) {
            thrown = e;
        }
        if (!(thrown instanceof IllegalArgumentException)) {
            throw new RuleFailure("plan with a per-head layout for " + (hq + 2) + " heads (problem has " + hq
                    + ") must throw IllegalArgumentException but " + (thrown == null ? "returned a plan" : "threw " + thrown),
                    Double.NaN, c.seed());
        }
        return Double.NaN;
    }

    private double forwardAfterClose(SparseAttention backend) {
        AttentionCase c = supported(backend.capabilities(), Feature.CORE, backend.capabilities().precisions().iterator().next())
                .get(0);
        AttentionPlan plan = backend.plan(c.problem(), c.layout());
        plan.forward(c.q(), c.k(), c.v(), c.newOutput());
        plan.close();
        try {
            plan.close();
        } catch (RuntimeException e) {
            throw new RuleFailure("a second close() threw " + e + "; close must be idempotent", Double.NaN, c.seed());
        }
        try {
            plan.forward(c.q(), c.k(), c.v(), c.newOutput());
        } catch (IllegalStateException expected) {
            return Double.NaN;
        } catch (RuntimeException e) {
            throw new RuleFailure("forward after close must throw IllegalStateException but threw " + e, Double.NaN, c.seed());
        }
        throw new RuleFailure("forward after close must throw IllegalStateException but returned normally", Double.NaN,
                c.seed());
    }

    private double undeclaredFeatures(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        AttentionProblem base = AttentionProblem.builder().heads(2).length(64).headDim(Math.max(16, caps.minHeadDim()))
                .precision(caps.precisions().iterator().next()).build();
        List<Object[]> probes = new ArrayList<>();
        if (!caps.causal()) {
            probes.add(new Object[] {"CAUSAL", base.toBuilder().causal(true).build(), false});
        }
        if (!caps.groupedQuery()) {
            probes.add(new Object[] {"GROUPED_QUERY", base.toBuilder().kvHeads(1).build(), false});
        }
        if (!caps.keyLengths()) {
            probes.add(new Object[] {"KEY_LENGTHS", base.toBuilder().keyLengths(30).build(), false});
        }
        if (!caps.queryLengths()) {
            probes.add(new Object[] {"QUERY_LENGTHS", base.toBuilder().queryLengths(30).build(), false});
        }
        if (!caps.lse()) {
            probes.add(new Object[] {"LSE", base, true});
        }
        for (Precision p : Precision.values()) {
            if (!caps.precisions().contains(p)) {
                probes.add(new Object[] {"precision " + p, base.toBuilder().precision(p).build(), false});
            }
        }
        if (caps.maxHeadDim() < 4096) {
            probes.add(new Object[] {"head dim " + (caps.maxHeadDim() + 1),
                base.toBuilder().headDim(caps.maxHeadDim() + 1).build(), false});
        }
        for (Object[] probe : probes) {
            AttentionProblem pr = (AttentionProblem) probe[1];
            BlockLayout layout = Patterns.parse("window(block=16, blocks=3)").layout(64, 64, 2, pr.causal());
            RuntimeException thrown = null;
            try (AttentionPlan plan = backend.plan(pr, layout)) {
                AttentionCase c = new AttentionCase("probe", 1, pr, Patterns.parse("window(block=16, blocks=3)"), layout,
                        Tensor.zeros(TensorLayout.BHSD, pr.batch(), pr.queryHeads(), pr.queryLength(), pr.headDim()),
                        Tensor.zeros(TensorLayout.BHSD, pr.batch(), pr.kvHeads(), pr.keyLength(), pr.headDim()),
                        Tensor.zeros(TensorLayout.BHSD, pr.batch(), pr.kvHeads(), pr.keyLength(), pr.valueDim()));
                plan.forward(c.q(), c.k(), c.v(), c.newOutput(), (Boolean) probe[2] ? c.newLse() : null);
            } catch (RuntimeException e) {
                thrown = e;
            }
            if (!(thrown instanceof UnsupportedOperationException)) {
                throw new RuleFailure("the backend does not declare " + probe[0] + ", so a problem that needs it must throw "
                        + "UnsupportedOperationException but " + (thrown == null ? "it ran" : "it threw " + thrown)
                        + "; either declare the capability or refuse it", Double.NaN, 0);
            }
            if (thrown.getMessage() == null || thrown.getMessage().isBlank()) {
                throw new RuleFailure("UnsupportedOperationException for " + probe[0] + " must name the capability",
                        Double.NaN, 0);
            }
        }
        return Double.NaN;
    }

    /**
     * Rule 20: one NaN, {@code +∞} or {@code −∞} at a time in {@code q}, {@code k} or {@code v} (see
     * {@link NonFiniteInjection#positions}), compared element by element with the oracle on the
     * same inputs, output and (when declared) LSE, in every declared precision. One plan per case.
     */
    private double nonFiniteInputs(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : supported(caps, Feature.NON_FINITE, p)) {
                Tensor[] inputs = {c.q().copy(), c.k().copy(), c.v().copy()};
                AttentionPlan plan = openPlan(backend, c, c.layout(), "");
                try (plan) {
                    // First the finite case itself, so that a backend wrong everywhere is not reported as a NaN problem.
                    worst = Math.max(worst, injected(plan, c, inputs, null, caps.lse(), Tolerance.of(p)));
                    for (NonFiniteInjection at : NonFiniteInjection.positions(c)) {
                        float old = at.apply(inputs);
                        worst = Math.max(worst, injected(plan, c, inputs, at, caps.lse(), Tolerance.of(p)));
                        at.undo(inputs, old);
                    }
                }
            }
        }
        return worst;
    }

    /** One forward of rule 20 on {@code inputs} (holding {@code at}, or nothing injected when null), against the oracle. */
    private static double injected(AttentionPlan plan, AttentionCase c, Tensor[] inputs, NonFiniteInjection at,
                                   boolean withLse, Tolerance tol) {
        String what = "case " + c + (at == null ? " before any injection" : " with " + at);
        // The oracle first: it sees exactly the inputs the backend is given, whatever the backend does to them.
        DenseOracle.Result expected = DenseOracle.compute(c.problem(), c.layout(), inputs[0], inputs[1], inputs[2]);
        Tensor out = c.newOutput();
        float[] lse = withLse ? c.newLse() : null;
        try {
            plan.forward(inputs[0], inputs[1], inputs[2], out, lse);
        } catch (RuntimeException e) {
            throw new RuleFailure(what + " threw " + e, Double.NaN, c.seed());
        }
        Comparison.Outcome o = Comparison.compareElementByElement(c.problem(), expected, out, lse, tol);
        if (!o.ok()) {
            throw new RuleFailure(what + ": " + o.message(), o.worstRatio(), c.seed());
        }
        return o.worstRatio();
    }

    /**
     * Rule 21: each case's layout split into two or three disjoint key-block sets ({@link KeySplit}),
     * each set computed by the backend with LSE, the partials merged with {@link OnlineSoftmax#merge}
     * in order and again in reverse order with the arguments swapped; both merges must match the
     * oracle of the whole layout, and each other.
     */
    private double keySplitsMerge(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            List<AttentionCase> cases = supported(caps, Feature.KEY_SPLITS, p);
            for (int n = 0; n < cases.size(); n++) {
                AttentionCase c = cases.get(n);
                Tolerance tol = Tolerance.of(p);
                int parts = 2 + n % 2;
                BlockLayout[] split = KeySplit.split(c.layout(), parts, new Random(c.seed()));
                Tensor[] outs = new Tensor[parts];
                float[][] lses = new float[parts][];
                for (int x = 0; x < parts; x++) {
                    outs[x] = c.newOutput();
                    lses[x] = c.newLse();
                    try (AttentionPlan plan = openPlan(backend, c, split[x], " (key-block set " + x + " of " + parts + ")")) {
                        plan.forward(c.q(), c.k(), c.v(), outs[x], lses[x]);
                    } catch (RuleFailure e) {
                        throw e;
                    } catch (RuntimeException e) {
                        throw new RuleFailure("case " + c + ", key-block set " + x + " of " + parts + ": forward threw " + e,
                                Double.NaN, c.seed());
                    }
                }
                String what = "case " + c + " split into " + parts + " disjoint key-block sets (seed " + c.seed() + ")";
                // In order, folding each partial into the first: ((P0 + P1) + P2).
                Tensor forward = outs[0].copy();
                float[] forwardLse = lses[0].clone();
                for (int x = 1; x < parts; x++) {
                    OnlineSoftmax.merge(forward, forwardLse, outs[x], lses[x], forward, forwardLse);
                }
                // Reverse order, arguments swapped: (P0 + (P1 + P2)) with the running result second.
                Tensor backward = outs[parts - 1].copy();
                float[] backwardLse = lses[parts - 1].clone();
                for (int x = parts - 2; x >= 0; x--) {
                    OnlineSoftmax.merge(outs[x], lses[x], backward, backwardLse, backward, backwardLse);
                }
                DenseOracle.Result whole = c.expected();
                worst = Math.max(worst, requireMatch(what + ", merged in order", c, whole, forward, forwardLse, tol));
                worst = Math.max(worst, requireMatch(what + ", merged in reverse order", c, whole, backward, backwardLse,
                        tol));
                requireMatch(what + ": the reverse-order merge against the in-order merge", c,
                        asResult(c.problem(), forward, forwardLse), backward, backwardLse, tol);
            }
        }
        return worst;
    }

    /** Opens a plan for a case over {@code layout}, turning a refusal into a rule failure. */
    private static AttentionPlan openPlan(SparseAttention backend, AttentionCase c, BlockLayout layout, String which) {
        try {
            return backend.plan(c.problem(), layout);
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + c + which + ": plan threw " + e, Double.NaN, c.seed());
        }
    }

    private static double requireMatch(String what, AttentionCase c, DenseOracle.Result expected, Tensor out, float[] lse,
                                       Tolerance tol) {
        Comparison.Outcome o = Comparison.compare(c.problem(), expected, out, lse, tol);
        if (!o.ok()) {
            throw new RuleFailure(what + ": " + o.message(), o.worstRatio(), c.seed());
        }
        return o.worstRatio();
    }

    /** A float32 result as an oracle result (BHSD order), to compare two results with each other. */
    private static DenseOracle.Result asResult(AttentionProblem p, Tensor out, float[] lse) {
        int vdim = p.valueDim();
        double[] o = new double[p.batch() * p.queryHeads() * p.queryLength() * vdim];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                    for (int d = 0; d < vdim; d++) {
                        o[row * vdim + d] = out.get(b, h, i, d);
                    }
                }
            }
        }
        double[] l = new double[lse.length];
        for (int r = 0; r < lse.length; r++) {
            l[r] = lse[r];
        }
        return new DenseOracle.Result(o, l);
    }

    private double linearMemory(SparseAttention backend) {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = List.of(java, MEMORY_RULE_HEAP, "-cp", System.getProperty("java.class.path"),
                LinearMemoryProbe.class.getName(), backend.getClass().getName());
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            byte[] output = process.getInputStream().readAllBytes();
            int code = process.waitFor();
            String text = new String(output, StandardCharsets.UTF_8).strip();
            if (code != 0) {
                throw new RuleFailure("BigBird over " + LinearMemoryProbe.TOKENS + " tokens in a JVM with " + MEMORY_RULE_HEAP
                        + " failed (exit " + code + "): " + lastLines(text, 6), Double.NaN, 0);
            }
            return Double.NaN;
        } catch (IOException e) {
            throw new RuleFailure("could not start a child JVM for the memory rule: " + e, Double.NaN, 0);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuleFailure("interrupted", Double.NaN, 0);
        }
    }

    private static String lastLines(String text, int n) {
        List<String> lines = text.lines().toList();
        return String.join(" | ", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    }
}
