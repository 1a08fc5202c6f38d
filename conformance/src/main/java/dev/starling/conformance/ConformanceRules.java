package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.conformance.CaseGenerator.CaseKind;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * The rules of {@code RULES.md}, without any test framework: {@link #check(Rule)} runs one rule
 * against the backend and returns its result. {@link SparseAttentionContract} (JUnit) and
 * {@link ConformanceRunner} ({@code starling conformance}) both call this.
 *
 * <p>Every case of every rule is drawn from the run seed given here, so the same seed replays the
 * same cases in the same order whichever rules run ({@link #only}); a failure carries the run seed
 * ({@link RuleResult#seed()}). {@link #requireAvailable} turns "unavailable here" from a skip into a
 * failure; {@link #memoryRuleBackend} says how rule 19's child JVM builds the backend.
 */
public final class ConformanceRules {
    /** The default base seed of every generated case. */
    public static final long DEFAULT_SEED = 20261128L;
    /** The heap the linear-memory rule gives the 65,536-token case. */
    public static final String MEMORY_RULE_HEAP = "-Xmx1g";
    private static final float POISON = 1.2345e30f;

    private final Supplier<SparseAttention> factory;
    private final long seed;
    private final boolean requireAvailable;
    private final Set<Rule> only;
    private final LinearMemoryProbe.BackendSource memorySource;

    /**
     * Rules for a backend, with every rule selected, an unavailable backend skipped, and rule 19's
     * child JVM building the backend through its class's public no-argument constructor.
     *
     * @param factory creates the backend under test (called once per rule)
     * @param seed the run seed: the base seed of every generated case
     */
    public ConformanceRules(Supplier<SparseAttention> factory, long seed) {
        this(factory, seed, false, EnumSet.allOf(Rule.class), null);
    }

    private ConformanceRules(Supplier<SparseAttention> factory, long seed, boolean requireAvailable, Set<Rule> only,
                             LinearMemoryProbe.BackendSource memorySource) {
        this.factory = factory;
        this.seed = seed;
        this.requireAvailable = requireAvailable;
        this.only = only.isEmpty() ? EnumSet.noneOf(Rule.class) : EnumSet.copyOf(only);
        this.memorySource = memorySource;
    }

    /**
     * @param require whether a backend that cannot run here (unavailable, or its {@code availability()} throws or
     *                returns null) fails every rule instead of skipping it
     * @return rules like these with that setting
     */
    public ConformanceRules requireAvailable(boolean require) {
        return new ConformanceRules(factory, seed, require, only, memorySource);
    }

    /**
     * @param rules the rules {@link #check} runs; every other rule is skipped, saying so
     * @return rules like these with that selection
     */
    public ConformanceRules only(Set<Rule> rules) {
        return new ConformanceRules(factory, seed, requireAvailable, rules, memorySource);
    }

    /**
     * @param source how rule 19's child JVM builds the backend; {@code null} for the backend class's public
     *               no-argument constructor
     * @return rules like these with that source
     */
    public ConformanceRules memoryRuleBackend(LinearMemoryProbe.BackendSource source) {
        return new ConformanceRules(factory, seed, requireAvailable, only, source);
    }

    /** @return the run seed */
    public long seed() {
        return seed;
    }

    /** Thrown inside a rule to end it with a failure. */
    static final class RuleFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final double worst;

        RuleFailure(String message, double worst) {
            super(message, null, false, false);
            this.worst = worst;
        }
    }

    /**
     * Runs one rule. A rule not selected ({@link #only}) is skipped. Rule 25 (the SPI contract)
     * runs whether or not the backend is available; every other rule skips, with the backend's
     * reason, when it is not (or fails, with {@link #requireAvailable}).
     *
     * @param rule the rule
     * @return pass, fail (with the case, the worst element and the run seed) or skipped (with the reason)
     */
    public RuleResult check(Rule rule) {
        if (!only.contains(rule)) {
            return RuleResult.skip(rule, "not selected (only rule" + (only.size() == 1 ? " " : "s ")
                    + only.stream().map(r -> String.valueOf(r.number())).collect(Collectors.joining(", ")) + " run)");
        }
        SparseAttention backend;
        try {
            backend = factory.get();
        } catch (RuntimeException | Error e) {
            return RuleResult.fail(rule, "creating the backend threw " + e, Double.NaN, seed);
        }
        if (backend == null) {
            return RuleResult.fail(rule, "the backend factory returned null", Double.NaN, seed);
        }
        if (rule == Rule.R25_SERVICE_CONTRACT) {
            return guarded(rule, () -> serviceContract(backend));
        }
        Availability availability;
        try {
            availability = backend.availability();
        } catch (RuntimeException | Error e) {
            availability = Availability.unavailable("its availability() threw " + e);
        }
        if (availability == null) {
            availability = Availability.unavailable("its availability() returned null");
        }
        if (!availability.isAvailable()) {
            String why = "backend '" + safeName(backend) + "' is " + availability;
            return requireAvailable
                    ? RuleResult.fail(rule, why + "; a backend that cannot run cannot pass (availability is required: "
                            + "--require-available, -D" + SparseAttentionContract.REQUIRE_AVAILABLE_PROPERTY + "=true)",
                            Double.NaN, seed)
                    : RuleResult.skip(rule, why);
        }
        Capabilities caps;
        try {
            caps = backend.capabilities();
        } catch (RuntimeException | Error e) {
            return RuleResult.fail(rule, "capabilities() threw " + e, Double.NaN, seed);
        }
        if (caps == null) {
            return RuleResult.fail(rule, "capabilities() returned null", Double.NaN, seed);
        }
        String missing = missingCapability(rule, caps);
        if (missing != null) {
            return RuleResult.skip(rule, "backend does not declare " + missing + "; declare it to run this rule");
        }
        GradientRules gradients = new GradientRules(seed);
        TensorViewRules views = new TensorViewRules(seed);
        BlockCountRules counts = new BlockCountRules(seed);
        OutputViewRules outputs = new OutputViewRules(seed);
        LongRowRules longRows = new LongRowRules(seed);
        SetRules sets = new SetRules(seed);
        NaiveErrorBound naive = new NaiveErrorBound(seed);
        RuleResult result = guarded(rule, () -> switch (rule) {
            case R01_OUTPUT_MATCHES_ORACLE -> feature(backend, CaseKind.CORE, false);
            case R02_PARTIAL_TAIL_BLOCKS -> feature(backend, CaseKind.TAILS, false);
            case R03_CAUSAL -> feature(backend, CaseKind.CAUSAL, false);
            case R04_GROUPED_QUERY -> feature(backend, CaseKind.GROUPED_QUERY, false);
            case R05_KEY_AND_QUERY_LENGTHS -> feature(backend, CaseKind.LENGTHS, false);
            case R06_LSE -> Math.max(feature(backend, CaseKind.CORE, true), feature(backend, CaseKind.TAILS, true));
            case R07_HUGE_LOGITS -> feature(backend, CaseKind.HUGE_LOGITS, false);
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
            case R18_TENSOR_LAYOUTS -> feature(backend, CaseKind.TENSOR_LAYOUTS, false);
            case R19_LINEAR_MEMORY -> linearMemory(backend);
            case R20_NON_FINITE_INPUTS -> nonFiniteInputs(backend);
            case R21_KEY_SPLITS_MERGE -> keySplitsMerge(backend);
            case R22_FEATURE_COMBINATIONS -> featureCombinations(backend);
            case R23_LONG_SEQUENCES -> longSequences(backend);
            case R24_WORK_FOLLOWS_ALLOWED_BLOCKS -> workFollowsAllowedBlocks(backend);
            case R25_SERVICE_CONTRACT -> serviceContract(backend);
            case R26_KEY_SHARDS_MERGE -> keyShardsMerge(backend);
            case R27_GRADIENTS_MATCH_ORACLE -> gradients.gradientsMatchOracle(backend);
            case R28_GRADIENT_MASKS -> gradients.gradientMasks(backend);
            case R29_GRADIENT_GROUPED_QUERY -> gradients.gradientGroupedQuery(backend);
            case R30_GRADIENT_NON_FINITE -> gradients.gradientNonFinite(backend);
            case R31_GRADIENT_DETERMINISTIC -> gradients.gradientDeterministic(backend);
            case R32_THREAD_SAFE_BACKWARD -> gradients.threadSafeBackward(backend);
            case R33_GRADIENT_EVERY_ELEMENT_WRITTEN -> gradients.gradientEveryElementWritten(backend);
            case R34_BACKWARD_INPUTS_NOT_MODIFIED -> gradients.backwardInputsNotModified(backend);
            case R35_BACKWARD_BAD_INPUT_REFUSED -> gradients.backwardBadInputRefused(backend);
            case R36_BACKWARD_AFTER_CLOSE -> gradients.backwardAfterClose(backend);
            case R37_GRADIENT_FEATURE_COMBINATIONS -> gradients.gradientFeatureCombinations(backend);
            case R38_STRIDED_TENSORS -> views.stridedTensors(backend);
            case R39_OFF_HEAP_TENSORS -> views.offHeapTensors(backend);
            case R40_HALF_PRECISION_TENSORS -> views.halfPrecisionTensors(backend);
            case R41_BLOCK_COUNTS -> counts.blockCounts(backend);
            case R42_INTERRUPTED_CALLS -> InterruptedCalls.check(backend, seed);
            case R43_LARGE_FINITE_LOGITS -> Math.max(feature(backend, CaseKind.LARGE_LOGITS, caps.has(Feature.LSE)),
                    caps.has(Feature.BACKWARD) ? gradients.largeFiniteLogits(backend) : 0);
            case R44_OUTPUT_VIEWS -> outputs.outputViews(backend);
            case R45_GRADIENT_LONG_ROWS -> longRows.gradientLongRows(backend);
            case R46_GRADIENT_CAUSAL_SHIFT -> longRows.gradientCausalShift(backend);
            case R47_SPLIT_ROWS_RECOMBINE -> longRows.splitRowsRecombine(backend);
            case R48_KEYS_COUNTED_ONCE -> sets.keysCountedOnce(backend);
            case R49_EVERY_KEY_CONTRIBUTES -> sets.everyKeyContributes(backend);
            case R50_POISONED_BOUNDS -> new PoisonedBounds(seed).check(backend);
            case R51_NAIVE_ERROR_BOUND -> naive.check(backend);
        });
        return rule == Rule.R51_NAIVE_ERROR_BOUND ? result.withNaiveRatio(naive.naiveRatio()) : result;
    }

    /** Runs a rule body, turning a {@link RuleFailure} or anything unexpected into a failure with the run seed. */
    private RuleResult guarded(Rule rule, DoubleSupplier body) {
        try {
            return RuleResult.pass(rule, body.getAsDouble());
        } catch (RuleFailure f) {
            return RuleResult.fail(rule, f.getMessage(), f.worst, seed);
        } catch (RuntimeException | Error e) {
            StackTraceElement[] at = e.getStackTrace();
            return RuleResult.fail(rule, "unexpected " + e + (at.length > 0 ? " at " + at[0] : ""), Double.NaN, seed);
        }
    }

    private static String safeName(SparseAttention backend) {
        try {
            return String.valueOf(backend.name());
        } catch (RuntimeException | Error e) {
            return backend.getClass().getName();
        }
    }

    /**
     * @return the features {@code rule} needs and {@code caps} lacks, joined with " and " in {@link Feature} order,
     *         or null when it may run
     */
    static String missingCapability(Rule rule, Capabilities caps) {
        EnumSet<Feature> lacking = rule.needs().isEmpty() ? EnumSet.noneOf(Feature.class) : EnumSet.copyOf(rule.needs());
        lacking.removeAll(caps.features());
        return lacking.isEmpty() ? null : lacking.stream().map(Feature::name).collect(Collectors.joining(" and "));
    }

    private List<AttentionCase> supported(Capabilities caps, CaseKind feature, Precision precision) {
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
            throw new RuleFailure("case " + c + " threw " + e, Double.NaN);
        }
    }

    private static double compare(AttentionCase c, DenseOracle.Result expected, Tensor out, float[] lse) {
        Comparison.Outcome o = Comparison.compare(c.problem(), expected, out, lse, Tolerance.of(c.problem().precision()));
        if (!o.ok()) {
            throw new RuleFailure("case " + c + ": " + o.message(), o.worstRatio());
        }
        return o.worstRatio();
    }

    private double feature(SparseAttention backend, CaseKind feature, boolean withLse) {
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
            List<AttentionCase> cases = new ArrayList<>(supported(caps, CaseKind.EMPTY_ROWS, p));
            if (caps.has(Feature.CAUSAL)) {
                cases.addAll(supported(caps, CaseKind.CAUSAL, p).stream().filter(c -> c.name().contains("no key")).toList());
            }
            if (caps.has(Feature.KEY_LENGTHS) && caps.has(Feature.QUERY_LENGTHS)) {
                cases.addAll(supported(caps, CaseKind.LENGTHS, p).stream().filter(c -> c.name().contains("zero")).toList());
            }
            for (AttentionCase c : cases) {
                Tensor out = c.newOutput();
                float[] lse = caps.has(Feature.LSE) ? c.newLse() : null;
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
                                    + ") has no allowed key, so O must be +0.0, but d=" + d + " is " + got, Double.NaN);
                        }
                    }
                    if (lse != null && lse[row] != Float.NEGATIVE_INFINITY) {
                        throw new RuleFailure("case " + c + ": row (b=" + b + ", h=" + h + ", i=" + i
                                + ") has no allowed key, so LSE must be -Infinity, but is " + lse[row], Double.NaN);
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
        List<AttentionCase> cases = new ArrayList<>(supported(caps, CaseKind.EMPTY_ROWS, p));
        cases.addAll(supported(caps, CaseKind.TAILS, p));
        cases.addAll(supported(caps, CaseKind.LENGTHS, p));
        cases.addAll(supported(caps, CaseKind.TENSOR_LAYOUTS, p));
        if (caps.has(Feature.CAUSAL)) {
            cases.addAll(supported(caps, CaseKind.CAUSAL, p));
        }
        for (AttentionCase c : cases) {
            Tensor out = c.newOutput();
            Arrays.fill(out.data(), POISON);
            float[] lse = caps.has(Feature.LSE) ? c.newLse() : null;
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
                                        + ") was never written (still holds the poison " + POISON + ")", Double.NaN);
                            }
                        }
                        if (lse != null && lse[(b * pr.queryHeads() + h) * pr.queryLength() + i] == POISON) {
                            throw new RuleFailure("case " + c + ": lse (b=" + b + ", h=" + h + ", i=" + i
                                    + ") was never written", Double.NaN);
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
            List<AttentionCase> cases = new ArrayList<>(supported(caps, CaseKind.CORE, p).subList(0, 3));
            cases.addAll(supported(caps, CaseKind.TENSOR_LAYOUTS, p));
            cases.addAll(supported(caps, CaseKind.TAILS, p));
            for (AttentionCase c : cases) {
                Tensor[] before = {c.q().copy(), c.k().copy(), c.v().copy()};
                run(backend, c, c.newOutput(), caps.has(Feature.LSE) ? c.newLse() : null);
                String[] names = {"q", "k", "v"};
                Tensor[] after = {c.q(), c.k(), c.v()};
                for (int t = 0; t < 3; t++) {
                    Optional<String> changed = Comparison.bitDifference(before[t], after[t]);
                    if (changed.isPresent()) {
                        throw new RuleFailure("case " + c + ": input " + names[t] + " was modified "
                                + changed.get().replace(" where ", " where it held ").replace(", i=", ", n="), Double.NaN);
                    }
                }
            }
        }
        return Double.NaN;
    }

    private AttentionCase mediumCase(Capabilities caps) {
        Precision p = caps.precisions().iterator().next();
        List<AttentionCase> core = supported(caps, CaseKind.CORE, p);
        return core.get(core.size() - 1);
    }

    private double deterministic(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        AttentionCase c = mediumCase(caps);
        Tensor[] outs = {c.newOutput(), c.newOutput(), c.newOutput()};
        float[][] lses = new float[3][];
        for (int x = 0; x < 3; x++) {
            lses[x] = caps.has(Feature.LSE) ? c.newLse() : null;
        }
        try (AttentionPlan plan = openPlan(backend, c, c.layout(), "")) {
            plan.forward(c.q(), c.k(), c.v(), outs[0], lses[0]);
            plan.forward(c.q(), c.k(), c.v(), outs[1], lses[1]);
        }
        run(backend, c, outs[2], lses[2]);
        String[] what = {null, "a second call on the same plan", "a call on a new plan"};
        for (int x = 1; x < 3; x++) {
            Optional<String> d = difference(c.problem(), outs[0], lses[0], outs[x], lses[x]);
            if (d.isPresent()) {
                throw new RuleFailure("case " + c + ": " + what[x] + " differs bit for bit from the first call, "
                        + d.get(), Double.NaN);
            }
        }
        return Double.NaN;
    }

    /**
     * The first bit-level difference between two results of one problem, output before LSE, as
     * {@code output at (b, h, i, d): x where y (n of m elements differ)}, or empty.
     */
    private static Optional<String> difference(AttentionProblem p, Tensor expected, float[] expectedLse, Tensor got,
                                               float[] gotLse) {
        Optional<String> d = Comparison.bitDifference(expected, got);
        if (d.isPresent()) {
            return Optional.of("output " + d.get());
        }
        if (expectedLse == null) {
            return Optional.empty();
        }
        int differing = 0;
        int first = -1;
        for (int r = 0; r < expectedLse.length; r++) {
            if (Float.floatToRawIntBits(expectedLse[r]) != Float.floatToRawIntBits(gotLse[r])) {
                first = differing++ == 0 ? r : first;
            }
        }
        if (first < 0) {
            return Optional.empty();
        }
        int i = first % p.queryLength();
        int h = first / p.queryLength() % p.queryHeads();
        int b = first / p.queryLength() / p.queryHeads();
        return Optional.of(String.format("lse at (b=%d, h=%d, i=%d): %s where %s (%d of %d elements differ)", b, h, i,
                gotLse[first], expectedLse[first], differing, expectedLse.length));
    }

    /** Threads of rule 12. */
    static final int THREADS = 4;
    /** Calls each thread of rule 12 makes. */
    static final int CALLS_PER_THREAD = 6;

    /**
     * Rule 12: {@value #THREADS} threads call {@code forward} on one plan at once, each with its own
     * inputs, {@value #CALLS_PER_THREAD} times; each result must equal, bit for bit, the result of a
     * serial call on the same inputs. Different inputs per thread are what show an output or
     * scratch buffer the plan owns: with the same inputs every thread writes the same values.
     */
    private double threadSafe(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        AttentionCase base = mediumCase(caps);
        boolean withLse = caps.has(Feature.LSE);
        AttentionCase[] inputs = new AttentionCase[THREADS];
        List<Object[]> serial = new ArrayList<>();
        try (AttentionPlan plan = openPlan(backend, base, base.layout(), "")) {
            for (int t = 0; t < THREADS; t++) {
                inputs[t] = base.withInputs(base.seed() + 1 + t);
                Tensor out = base.newOutput();
                float[] lse = withLse ? base.newLse() : null;
                plan.forward(inputs[t].q(), inputs[t].k(), inputs[t].v(), out, lse);
                serial.add(new Object[] {out, lse});
            }
            return ConcurrentCalls.check("forward", "case " + base, CALLS_PER_THREAD, serial, t -> () -> {
                Tensor out = base.newOutput();
                float[] lse = withLse ? base.newLse() : null;
                plan.forward(inputs[t].q(), inputs[t].k(), inputs[t].v(), out, lse);
                return new Object[] {out, lse};
            }, (want, got) -> difference(base.problem(), (Tensor) want[0], (float[]) want[1], (Tensor) got[0],
                    (float[]) got[1]));
        }
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
                    o.worstRatio());
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
        if (caps.has(Feature.KEY_LENGTHS)) {
            AttentionCase lengths = supported(caps, CaseKind.LENGTHS, p).stream().filter(c -> c.name().equals("key lengths"))
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
        if (caps.has(Feature.CAUSAL)) {
            AttentionCase causal = supported(caps, CaseKind.CAUSAL, p).get(0);
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
        AttentionCase c = supported(caps, CaseKind.CORE, caps.precisions().iterator().next()).get(4);
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
        float[] goodLse = caps.has(Feature.LSE) ? new float[pr.lseSize()] : null;
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
                if (call[5] != null && !caps.has(Feature.LSE)) {
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
                            + (thrown == null ? "returned normally" : "threw " + thrown), Double.NaN);
                }
                if (target != null) {
                    for (float f : target.data()) {
                        if (f != POISON) {
                            throw new RuleFailure(what + " wrote into the output before refusing", Double.NaN);
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
                        + (thrown == null ? "returned a plan" : "threw " + thrown), Double.NaN);
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
                    Double.NaN);
        }
        return Double.NaN;
    }

    private double forwardAfterClose(SparseAttention backend) {
        AttentionCase c = supported(backend.capabilities(), CaseKind.CORE, backend.capabilities().precisions().iterator().next())
                .get(0);
        closeDuringForward(backend, c);
        AttentionPlan plan = backend.plan(c.problem(), c.layout());
        plan.forward(c.q(), c.k(), c.v(), c.newOutput());
        plan.close();
        try {
            plan.close();
        } catch (RuntimeException e) {
            throw new RuleFailure("a second close() threw " + e + "; close must be idempotent", Double.NaN);
        }
        try {
            plan.forward(c.q(), c.k(), c.v(), c.newOutput());
        } catch (IllegalStateException expected) {
            return Double.NaN;
        } catch (RuntimeException e) {
            throw new RuleFailure("forward after close must throw IllegalStateException but threw " + e, Double.NaN);
        }
        throw new RuleFailure("forward after close must throw IllegalStateException but returned normally", Double.NaN);
    }

    /**
     * Closing while other threads are inside {@code forward} must not hang them: each running call
     * either finishes with the right answer or throws {@link IllegalStateException}, and {@code close}
     * returns (DESIGN section 4: close waits for running calls, then releases).
     */
    private void closeDuringForward(SparseAttention backend, AttentionCase c) {
        AttentionPlan plan = backend.plan(c.problem(), c.layout());
        DenseOracle.Result want = c.expected();
        int callers = 3;
        java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(callers);
        java.util.concurrent.ConcurrentLinkedQueue<String> problems = new java.util.concurrent.ConcurrentLinkedQueue<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < callers; t++) {
            Thread thread = new Thread(() -> {
                started.countDown();
                for (int call = 0; call < 20; call++) {
                    Tensor out = c.newOutput();
                    try {
                        plan.forward(c.q(), c.k(), c.v(), out);
                    } catch (IllegalStateException closed) {
                        return;
                    } catch (RuntimeException | Error e) {
                        problems.add("forward running during close threw " + e);
                        return;
                    }
                    Comparison.Outcome o = Comparison.compare(c.problem(), want, out, null,
                            Tolerance.of(c.problem().precision()));
                    if (!o.ok()) {
                        problems.add("a forward running during close gave a wrong answer: " + o.message());
                        return;
                    }
                }
            }, "starling-conformance-close-" + t);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
        try {
            started.await(30, java.util.concurrent.TimeUnit.SECONDS);
            Thread closer = new Thread(plan::close, "starling-conformance-closer");
            closer.setDaemon(true);
            closer.start();
            closer.join(60_000);
            if (closer.isAlive()) {
                throw new RuleFailure("close() did not return within 60 s while forward calls were running (a hang)",
                        Double.NaN);
            }
            for (Thread thread : threads) {
                thread.join(60_000);
                if (thread.isAlive()) {
                    throw new RuleFailure("a forward call running when close() was called did not return within 60 s "
                            + "(a hang); in-flight calls must finish or throw IllegalStateException", Double.NaN);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuleFailure("interrupted while closing", Double.NaN);
        }
        if (!problems.isEmpty()) {
            throw new RuleFailure(problems.peek(), Double.NaN);
        }
    }

    private double undeclaredFeatures(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        AttentionProblem base = AttentionProblem.builder().heads(2).length(64).headDim(Math.max(16, caps.minHeadDim()))
                .precision(caps.precisions().iterator().next()).build();
        List<Object[]> probes = new ArrayList<>();
        if (!caps.has(Feature.CAUSAL)) {
            probes.add(new Object[] {"CAUSAL", base.toBuilder().causal(true).build(), false});
        }
        if (caps.has(Feature.CAUSAL) && !caps.has(Feature.CAUSAL_SHIFT)) {
            probes.add(new Object[] {"CAUSAL_SHIFT", base.toBuilder().causal(true).causalShift(16).build(), false});
        }
        if (!caps.has(Feature.GROUPED_QUERY)) {
            probes.add(new Object[] {"GROUPED_QUERY", base.toBuilder().kvHeads(1).build(), false});
        }
        if (!caps.has(Feature.KEY_LENGTHS)) {
            probes.add(new Object[] {"KEY_LENGTHS", base.toBuilder().keyLengths(30).build(), false});
        }
        if (!caps.has(Feature.QUERY_LENGTHS)) {
            probes.add(new Object[] {"QUERY_LENGTHS", base.toBuilder().queryLengths(30).build(), false});
        }
        if (!caps.has(Feature.LSE)) {
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
        if (!caps.has(Feature.BACKWARD)) {
            int dim = headDim(caps, 16);
            undeclaredBackwardThrows(backend, base.toBuilder().headDim(dim).valueDim(dim).build());
        }
        if (!caps.has(Feature.BLOCK_COUNTS)) {
            probes.add(new Object[] {"BLOCK_COUNTS", base, false, BlockCountRules.withCounts(
                    Patterns.parse("window(block=16, blocks=3)").layout(64, 64, 2), new Random(seed), 0.5)});
        }
        for (Object[] probe : probes) {
            AttentionProblem pr = (AttentionProblem) probe[1];
            BlockLayout layout = probe.length > 3 ? (BlockLayout) probe[3]
                    : Patterns.parse("window(block=16, blocks=3)").layout(64, 64, 2, pr.causal());
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
                        + "; either declare the capability or refuse it", Double.NaN);
            }
            if (thrown.getMessage() == null || thrown.getMessage().isBlank()) {
                throw new RuleFailure("UnsupportedOperationException for " + probe[0] + " must name the capability",
                        Double.NaN);
            }
        }
        return Double.NaN;
    }

    /**
     * Rule 17 for the backward pass: a backend that does not declare {@code backward} throws
     * {@link UnsupportedOperationException} naming it from {@code backward} with valid arguments, and
     * writes no gradient.
     */
    private static void undeclaredBackwardThrows(SparseAttention backend, AttentionProblem pr) {
        BlockLayout layout = Patterns.parse("window(block=16, blocks=3)").layout(64, 64, 2, false);
        AttentionCase c = AttentionCase.random("backward probe", 17, pr, Patterns.parse("window(block=16, blocks=3)"),
                TensorLayout.BHSD, AttentionCase.Values.NORMAL);
        Tensor dq = Tensor.zeros(TensorLayout.BHSD, pr.batch(), pr.queryHeads(), pr.queryLength(), pr.headDim());
        Tensor dk = Tensor.zeros(TensorLayout.BHSD, pr.batch(), pr.kvHeads(), pr.keyLength(), pr.headDim());
        Tensor dv = Tensor.zeros(TensorLayout.BHSD, pr.batch(), pr.kvHeads(), pr.keyLength(), pr.valueDim());
        for (Tensor g : new Tensor[] {dq, dk, dv}) {
            Arrays.fill(g.data(), POISON);
        }
        GradientRules.Call call = new GradientRules.Call(c);
        RuntimeException thrown = null;
        try (AttentionPlan plan = backend.plan(pr, layout)) {
            plan.backward(call.q, call.k, call.v, call.out, call.lse, call.dOut, dq, dk, dv);
        } catch (RuntimeException e) {
            thrown = e;
        }
        if (!(thrown instanceof UnsupportedOperationException)) {
            throw new RuleFailure("the backend does not declare BACKWARD, so backward must throw "
                    + "UnsupportedOperationException but " + (thrown == null ? "it ran" : "it threw " + thrown)
                    + "; either declare the capability or refuse it", Double.NaN);
        }
        if (thrown.getMessage() == null || !thrown.getMessage().toLowerCase(Locale.ROOT).contains("backward")) {
            throw new RuleFailure("UnsupportedOperationException for an undeclared backward must name BACKWARD, but says: "
                    + thrown.getMessage(), Double.NaN);
        }
        for (Tensor g : new Tensor[] {dq, dk, dv}) {
            for (float f : g.data()) {
                if (f != POISON) {
                    throw new RuleFailure("backward, which the backend does not declare, wrote gradients before throwing",
                            Double.NaN);
                }
            }
        }
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
            for (AttentionCase c : supported(caps, CaseKind.NON_FINITE, p)) {
                Tensor[] inputs = {c.q().copy(), c.k().copy(), c.v().copy()};
                AttentionPlan plan = openPlan(backend, c, c.layout(), "");
                try (plan) {
                    // First the finite case itself, so that a backend wrong everywhere is not reported as a NaN problem.
                    worst = Math.max(worst, injected(plan, c, inputs, null, caps.has(Feature.LSE), Tolerance.of(p)));
                    for (NonFiniteInjection at : NonFiniteInjection.positions(c)) {
                        float old = at.apply(inputs);
                        worst = Math.max(worst, injected(plan, c, inputs, at, caps.has(Feature.LSE), Tolerance.of(p)));
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
            throw new RuleFailure(what + " threw " + e, Double.NaN);
        }
        Comparison.Outcome o = Comparison.compareElementByElement(c.problem(), expected, out, lse, tol);
        if (!o.ok()) {
            throw new RuleFailure(what + ": " + o.message(), o.worstRatio());
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
            List<AttentionCase> cases = supported(caps, CaseKind.KEY_SPLITS, p);
            for (int n = 0; n < cases.size(); n++) {
                AttentionCase c = cases.get(n);
                if ((c.problem().causal() || c.layout().causal()) && !caps.has(Feature.CAUSAL_SHIFT)) {
                    continue; // each shard of a causal problem moves the causal rule (KeyShards.problem)
                }
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
                                Double.NaN);
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

    /**
     * Rule 26: each case's keys cut into {@code S} contiguous key shards ({@link KeyShards}), {@code S}
     * and the cuts drawn from the case seed (every other case balanced by allowed blocks instead); the
     * backend computes each shard with LSE on the shard's own problem (its keys only, key lengths cut,
     * the causal rule moved by the shard's first key), layout and slices of {@code k} and {@code v};
     * the partials merged with {@link OnlineSoftmax#merge} in shard order and again in a shuffled order
     * must match the oracle of the whole, and each other.
     */
    private double keyShardsMerge(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            List<AttentionCase> cases = supported(caps, CaseKind.KEY_SHARDS, p);
            for (int n = 0; n < cases.size(); n++) {
                AttentionCase c = cases.get(n);
                if ((c.problem().causal() || c.layout().causal()) && !caps.has(Feature.CAUSAL_SHIFT)) {
                    continue; // each shard of a causal problem moves the causal rule (KeyShards.problem)
                }
                Tolerance tol = Tolerance.of(p);
                Random rnd = new Random(c.seed());
                int keyBlocks = c.layout().keyBlocks();
                int count = 1 + rnd.nextInt(Math.min(6, keyBlocks));
                KeyShards shards;
                if (n % 2 == 0) {
                    TreeSet<Integer> cuts = new TreeSet<>();
                    while (cuts.size() < count - 1) {
                        cuts.add(1 + rnd.nextInt(keyBlocks - 1));
                    }
                    shards = KeyShards.at(c.problem(), c.layout(), cuts.stream().mapToInt(Integer::intValue).toArray());
                } else {
                    shards = KeyShards.balanced(c.problem(), c.layout(), count);
                }
                int[] firsts = new int[shards.count()];
                for (int s = 0; s < firsts.length; s++) {
                    firsts[s] = shards.firstBlock(s);
                }
                String what = "case " + c + " cut into " + shards.count() + " key shards starting at key blocks "
                        + Arrays.toString(firsts) + " (seed " + c.seed() + ")";
                Tensor[] outs = new Tensor[shards.count()];
                float[][] lses = new float[shards.count()][];
                for (int s = 0; s < shards.count(); s++) {
                    AttentionProblem shardProblem = shards.problem(s);
                    String which = ", key shard " + s + " (" + shardProblem + ")";
                    outs[s] = c.newOutput();
                    lses[s] = c.newLse();
                    AttentionPlan plan;
                    try {
                        plan = backend.plan(shardProblem, shards.layout(s));
                    } catch (RuntimeException e) {
                        throw new RuleFailure(what + which + ": plan threw " + e, Double.NaN);
                    }
                    try (plan) {
                        plan.forward(c.q(), shards.slice(c.k(), s), shards.slice(c.v(), s), outs[s], lses[s]);
                    } catch (RuntimeException e) {
                        throw new RuleFailure(what + which + ": forward threw " + e, Double.NaN);
                    }
                }
                Tensor inOrder = outs[0].copy();
                float[] inOrderLse = lses[0].clone();
                for (int s = 1; s < outs.length; s++) {
                    OnlineSoftmax.merge(inOrder, inOrderLse, outs[s], lses[s], inOrder, inOrderLse);
                }
                List<Integer> order = new ArrayList<>();
                for (int s = 0; s < outs.length; s++) {
                    order.add(s);
                }
                java.util.Collections.shuffle(order, rnd);
                Tensor shuffled = outs[order.get(0)].copy();
                float[] shuffledLse = lses[order.get(0)].clone();
                for (int x = 1; x < order.size(); x++) {
                    OnlineSoftmax.merge(outs[order.get(x)], lses[order.get(x)], shuffled, shuffledLse, shuffled, shuffledLse);
                }
                DenseOracle.Result whole = c.expected();
                worst = Math.max(worst, requireMatch(what + ", merged in shard order", c, whole, inOrder, inOrderLse, tol));
                worst = Math.max(worst, requireMatch(what + ", merged in the order " + order, c, whole, shuffled,
                        shuffledLse, tol));
                requireMatch(what + ": the merge in the order " + order + " against the merge in shard order", c,
                        asResult(c.problem(), inOrder, inOrderLse), shuffled, shuffledLse, tol);
            }
        }
        return worst;
    }

    /** Opens a plan for a case over {@code layout}, turning a refusal into a rule failure. */
    private static AttentionPlan openPlan(SparseAttention backend, AttentionCase c, BlockLayout layout, String which) {
        try {
            return backend.plan(c.problem(), layout);
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + c + which + ": plan threw " + e, Double.NaN);
        }
    }

    /** Compares a result with the oracle's, failing the rule with {@code what} and the worst element when it differs. */
    static double requireMatch(String what, AttentionCase c, DenseOracle.Result expected, Tensor out, float[] lse,
                               Tolerance tol) {
        Comparison.Outcome o = Comparison.compare(c.problem(), expected, out, lse, tol);
        if (!o.ok()) {
            throw new RuleFailure(what + ": " + o.message(), o.worstRatio());
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
        LinearMemoryProbe.BackendSource source = memorySource;
        if (source == null) {
            if (!LinearMemoryProbe.BackendSource.usable(backend.getClass(), LinearMemoryProbe.BackendSource.Kind.BACKEND)) {
                throw new RuleFailure("rule 19 builds the backend again in a child JVM started with " + MEMORY_RULE_HEAP
                        + ", but " + backend.getClass().getName() + " is not a public class with a public no-argument "
                        + "constructor (which ServiceLoader needs too); in the JUnit contract give your test class a "
                        + "no-argument constructor or override memoryRuleBackendSupplier() (conformance/RULES.md, rule 19)",
                        Double.NaN);
            }
            source = LinearMemoryProbe.BackendSource.backendClass(backend.getClass());
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new ArrayList<>(List.of(java, MEMORY_RULE_HEAP));
        // The child sees the same modules as this JVM (a backend on an incubator module needs them to be available).
        for (String module : ModuleLayer.boot().modules().stream().map(Module::getName)
                .filter(name -> name.startsWith("jdk.incubator.")).sorted().toList()) {
            command.add("--add-modules=" + module);
        }
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), LinearMemoryProbe.class.getName()));
        command.addAll(source.arguments());
        // The rule takes seconds to minutes and Surefire prints nothing until a test ends: say what runs.
        System.err.println(memoryRuleNotice(backend.name(), source));
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            byte[] output = process.getInputStream().readAllBytes();
            int code = process.waitFor();
            String text = new String(output, StandardCharsets.UTF_8).strip();
            if (code != 0) {
                throw new RuleFailure("BigBird over " + LinearMemoryProbe.TOKENS + " tokens in a JVM with " + MEMORY_RULE_HEAP
                        + " (backend built there as " + source + ") failed (exit " + code + "): " + lastLines(text, 6),
                        Double.NaN);
            }
            return Double.NaN;
        } catch (IOException e) {
            throw new RuleFailure("could not start a child JVM for the memory rule: " + e, Double.NaN);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuleFailure("interrupted", Double.NaN);
        }
    }

    /**
     * @param backendName the backend under test
     * @param source how the child JVM builds it
     * @return the line printed on standard error before rule 19's child JVM starts
     */
    static String memoryRuleNotice(String backendName, LinearMemoryProbe.BackendSource source) {
        return String.format("starling conformance: rule 19, backend '%s': BigBird over %,d tokens in a child JVM with %s"
                + " (backend built there as %s); this takes from seconds to a few minutes", backendName,
                LinearMemoryProbe.TOKENS, MEMORY_RULE_HEAP, source);
    }

    /**
     * Rule 22: every case of {@link CombinationGenerator#generate} for the backend's capabilities,
     * each on a fresh plan over a poisoned output (and LSE when the case asks for it), every element
     * compared with the oracle.
     */
    private double featureCombinations(SparseAttention backend) {
        List<CombinationGenerator.Combination> all = CombinationGenerator.generate(backend.capabilities(), seed);
        double worst = 0;
        for (CombinationGenerator.Combination x : all) {
            AttentionCase c = x.testCase();
            Tensor out = c.newOutput();
            Arrays.fill(out.data(), POISON);
            float[] lse = x.lse() ? c.newLse() : null;
            if (lse != null) {
                Arrays.fill(lse, POISON);
            }
            try (AttentionPlan plan = openPlan(backend, c, c.layout(), "")) {
                plan.forward(c.q(), c.k(), c.v(), out, lse);
            } catch (RuleFailure e) {
                throw e;
            } catch (RuntimeException e) {
                throw new RuleFailure("case " + c + ": forward threw " + e, Double.NaN);
            }
            Comparison.Outcome o = Comparison.compare(c.problem(), c.expected(), out, lse, Tolerance.of(c.problem().precision()));
            if (!o.ok()) {
                throw new RuleFailure("case " + c + ": " + o.message(), o.worstRatio());
            }
            worst = Math.max(worst, o.worstRatio());
        }
        return worst;
    }

    /** Keys of the long cases of rule 23: at least 16,384, with a partial tail block. */
    static final int LONG_KEYS = 16_384 + 45;

    /** A head dim the backend accepts, as close to {@code want} as its limits allow. */
    private static int headDim(Capabilities caps, int want) {
        return Math.max(caps.minHeadDim(), Math.min(caps.maxHeadDim(), want));
    }

    /**
     * The cases of rule 23 in one precision, small head dims so the long rows stay cheap: BigBird
     * over {@value #LONG_KEYS} queries and keys (two global rows of 64 tokens read every key), and
     * 1,031 queries over {@value #LONG_KEYS} keys in BSHD with two query heads, as causal, MQA and
     * with key lengths as the backend declares.
     */
    List<AttentionCase> longCases(Capabilities caps, Precision p) {
        List<AttentionCase> cases = new ArrayList<>();
        AttentionProblem square = AttentionProblem.builder().heads(1).length(LONG_KEYS).headDim(headDim(caps, 8))
                .valueDim(headDim(caps, 12)).precision(p).build();
        cases.add(AttentionCase.random("long bigbird nq=nk=" + LONG_KEYS, seed + 23, square,
                Patterns.parse("bigbird(block=64, window=1, global=2, random=1, seed=" + (seed & 0xffff) + ")"),
                TensorLayout.BHSD, AttentionCase.Values.NORMAL));
        AttentionProblem.Builder wide = AttentionProblem.builder().heads(2).kvHeads(caps.has(Feature.GROUPED_QUERY) ? 1 : 2)
                .queryLength(1031).keyLength(LONG_KEYS).headDim(headDim(caps, 8)).valueDim(headDim(caps, 8))
                .causal(caps.has(Feature.CAUSAL)).precision(p);
        if (caps.has(Feature.KEY_LENGTHS)) {
            wide.keyLengths(LONG_KEYS - 500);
        }
        cases.add(AttentionCase.random("long nq 1031 nk " + LONG_KEYS + (caps.has(Feature.CAUSAL) ? " causal" : "")
                        + (caps.has(Feature.GROUPED_QUERY) ? " mqa" : "") + (caps.has(Feature.KEY_LENGTHS) ? " key lengths" : ""), seed + 24,
                wide.build(), Patterns.parse("bigbird(block=64, window=3, global=1, random=2, seed=" + (seed & 0xffff) + ")"),
                TensorLayout.BSHD, AttentionCase.Values.NORMAL));
        return cases;
    }

    /**
     * The rows rule 23 checks in each (batch entry, head): every long row's block (a query block
     * whose layout row holds at least half the key blocks: BigBird's global rows) at its first, last
     * and a random row; the first query block (four rows) and the last (three, {@code Nq − 1}
     * included); and 16 random rows.
     *
     * @return {@code {b, h, i}} triples, each once
     */
    static int[][] sampleRows(AttentionCase c) {
        AttentionProblem p = c.problem();
        BlockLayout l = c.layout();
        Random rnd = new Random(c.seed());
        int nq = p.queryLength();
        int qb = l.queryBlock();
        List<int[]> rows = new ArrayList<>();
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                TreeSet<Integer> picked = new TreeSet<>();
                int longBlocks = 0;
                for (int r = 0; r < l.queryBlocks() && longBlocks < 4; r++) {
                    if (2L * l.rowSize(h, r) >= l.keyBlocks()) {
                        longBlocks++;
                        int first = r * qb;
                        int last = Math.min(nq, first + qb) - 1;
                        picked.add(first);
                        picked.add(last);
                        picked.add(first + rnd.nextInt(last - first + 1));
                    }
                }
                int firstEnd = Math.min(nq, qb) - 1;
                picked.add(0);
                picked.add(Math.min(1, firstEnd));
                picked.add(rnd.nextInt(firstEnd + 1));
                picked.add(firstEnd);
                int lastBegin = (l.queryBlocks() - 1) * qb;
                picked.add(lastBegin);
                picked.add(lastBegin + rnd.nextInt(nq - lastBegin));
                picked.add(nq - 1);
                for (int x = 0; x < 16; x++) {
                    picked.add(rnd.nextInt(nq));
                }
                for (int i : picked) {
                    rows.add(new int[] {b, h, i});
                }
            }
        }
        return rows.toArray(new int[0][]);
    }

    /**
     * Rule 23: problems with at least 16,384 keys, as a backend's long-sequence paths see them
     * (split rows, large grids), checked on sampled rows: the oracle computes only those rows.
     */
    private double longSequences(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : longCases(caps, p)) {
                Tensor out = c.newOutput();
                Arrays.fill(out.data(), POISON);
                float[] lse = caps.has(Feature.LSE) ? c.newLse() : null;
                run(backend, c, out, lse);
                int[][] rows = sampleRows(c);
                double[][] expected = new double[rows.length][c.problem().valueDim()];
                double[] expectedLse = new double[rows.length];
                for (int r = 0; r < rows.length; r++) {
                    expectedLse[r] = DenseOracle.row(c.problem(), c.layout(), c.q(), c.k(), c.v(), rows[r][0], rows[r][1],
                            rows[r][2], expected[r]);
                }
                Comparison.Outcome o = Comparison.compareRows(c.problem(), rows, expected, expectedLse, out, lse,
                        Tolerance.of(p));
                if (!o.ok()) {
                    throw new RuleFailure("case " + c + ", " + rows.length + " sampled rows (long rows, first and last "
                            + "query blocks, random rows): " + o.message(), o.worstRatio());
                }
                worst = Math.max(worst, o.worstRatio());
            }
        }
        return worst;
    }

    /** Rule 24: the most the narrow pattern's time may be of the wide one's. */
    static final double WORK_TIME_RATIO_BOUND = 0.5;
    /** Rule 24 stops growing the problem once the wide pattern takes this long (seconds). */
    static final double WORK_STOP_SECONDS = 0.15;
    /** Rule 24's largest length. */
    static final int WORK_MAX_LENGTH = 16_384;

    /**
     * Rule 24: at one length, a narrow window (3 key blocks a row) against a wide one (all key
     * blocks but a corner: {@code nkb − 1}), the two timed alternately, the minimum of four calls
     * each; a ratio under the bound counts only when a second such round confirms it. The narrow one has about {@code 3/nkb} of the wide one's blocks; a backend whose work
     * follows the allowed blocks takes far less than half the time for it, one that computes
     * every block (and masks) the same time. The length doubles from 1,024 while the ratio is
     * above {@value #WORK_TIME_RATIO_BOUND} (fixed costs shrink against the work), until the wide
     * call takes {@value #WORK_STOP_SECONDS} s or the length reaches {@value #WORK_MAX_LENGTH}.
     */
    private double workFollowsAllowedBlocks(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        Precision p = caps.precisions().iterator().next();
        int block = 32;
        String last = "";
        for (int n = 1024; ; n *= 2) {
            AttentionProblem pr = AttentionProblem.builder().heads(1).length(n).headDim(headDim(caps, 16)).precision(p)
                    .build();
            int nkb = n / block;
            PatternSpec narrow = Patterns.parse("window(block=" + block + ", blocks=3)");
            PatternSpec wide = Patterns.parse("window(block=" + block + ", blocks=" + (nkb - 1) + ")");
            AttentionCase cn = AttentionCase.random("work narrow", seed + n, pr, narrow, TensorLayout.BHSD,
                    AttentionCase.Values.NORMAL);
            AttentionCase cw = new AttentionCase("work wide", cn.seed(), pr, wide, Starling.layout(pr, wide), cn.q(), cn.k(),
                    cn.v());
            Tensor out = cn.newOutput();
            double tn;
            double tw;
            double ratio;
            boolean confirmed = false;
            try (AttentionPlan pn = openPlan(backend, cn, cn.layout(), ""); AttentionPlan pw = openPlan(backend, cw, cw.layout(), "")) {
                double[] round = timeAlternately(pn, cn, pw, cw, out);
                tn = round[0];
                tw = round[1];
                ratio = tn / tw;
                if (ratio <= WORK_TIME_RATIO_BOUND) {
                    // A pass is confirmed by a second round: a burst of load elsewhere slowing only the wide calls
                    // must not let a backend with quadratic time through.
                    double[] again = timeAlternately(pn, cn, pw, cw, out);
                    confirmed = again[0] / again[1] <= WORK_TIME_RATIO_BOUND;
                    tn = Math.min(tn, again[0]);
                    tw = Math.min(tw, again[1]);
                    ratio = Math.max(ratio, again[0] / again[1]);
                }
            }
            long nnzNarrow = cn.layout().nnzOverHeads(1);
            long nnzWide = cw.layout().nnzOverHeads(1);
            last = String.format(Locale.ROOT, "at N=%d, %.2f ms for %d allowed blocks (window 3) against %.2f ms for %d "
                    + "(window %d): time ratio %.2f for a block ratio of %.3f", n, tn * 1e3, nnzNarrow, tw * 1e3, nnzWide,
                    nkb - 1, ratio, (double) nnzNarrow / nnzWide);
            if (confirmed) {
                return ratio / WORK_TIME_RATIO_BOUND;
            }
            if (tw >= WORK_STOP_SECONDS || n >= WORK_MAX_LENGTH) {
                throw new RuleFailure("time does not follow the allowed blocks: " + last + " (must be at most "
                        + WORK_TIME_RATIO_BOUND + "; lengths from 1024 up to " + n + " tried). Look for loops over every key "
                        + "block (or key) of a row that mask afterwards: work must follow the layout's rows", ratio
                        / WORK_TIME_RATIO_BOUND);
            }
        }
    }

    /**
     * Four calls of each plan, alternating so that load from elsewhere falls on both alike.
     *
     * @return {@code {fastest narrow, fastest wide}} in seconds
     */
    private static double[] timeAlternately(AttentionPlan narrow, AttentionCase cn, AttentionPlan wide, AttentionCase cw,
                                            Tensor out) {
        double tn = Double.POSITIVE_INFINITY;
        double tw = Double.POSITIVE_INFINITY;
        for (int rep = 0; rep < 4; rep++) {
            tw = Math.min(tw, timed(wide, cw, out));
            tn = Math.min(tn, timed(narrow, cn, out));
        }
        return new double[] {tn, tw};
    }

    /** @return seconds one forward takes */
    private static double timed(AttentionPlan plan, AttentionCase c, Tensor out) {
        long t0 = System.nanoTime();
        try {
            plan.forward(c.q(), c.k(), c.v(), out);
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + c + ": forward threw " + e, Double.NaN);
        }
        return (System.nanoTime() - t0) / 1e9;
    }

    /** Rule 25: the most one call of the no-argument constructor may take, once the class is loaded (seconds). */
    static final double CONSTRUCTOR_SECONDS = 0.02;

    /**
     * Rule 25: the SPI contract of DESIGN section 4, on an instance from the factory, a second one,
     * and instances made with the class's public no-argument constructor (as ServiceLoader makes them).
     */
    private double serviceContract(SparseAttention backend) {
        List<String> problems = new ArrayList<>();
        String name = spi("name()", backend::name, problems);
        if (name != null) {
            String lower = name.toLowerCase(Locale.ROOT);
            if (name.isBlank()) {
                problems.add("name() is blank");
            } else if (!name.equals(lower)) {
                problems.add("name() is '" + name + "', not lowercase: -Dstarling.backend and STARLING_BACKEND are "
                        + "lowercased before they are matched, so they can never select it; return '" + lower + "'");
            } else if (name.chars().anyMatch(Character::isWhitespace)) {
                problems.add("name() '" + name + "' holds whitespace");
            }
            String again = spi("name() (a second call)", backend::name, problems);
            if (again != null && !again.equals(name)) {
                problems.add("name() is not stable: '" + name + "', then '" + again + "'");
            }
        }
        Integer priority = spi("priority()", backend::priority, problems);
        Integer priorityAgain = spi("priority() (a second call)", backend::priority, problems);
        if (priority != null && priorityAgain != null && !priority.equals(priorityAgain)) {
            problems.add("priority() is not stable: " + priority + ", then " + priorityAgain);
        }
        if (spi("availability()", backend::availability, problems) == null && problems.stream().noneMatch(
                x -> x.startsWith("availability()"))) {
            problems.add("availability() returned null; return Availability.unavailable(reason) instead");
        }
        if (spi("capabilities()", backend::capabilities, problems) == null && problems.stream().noneMatch(
                x -> x.startsWith("capabilities()"))) {
            problems.add("capabilities() returned null");
        }
        SparseAttention second = spi("creating a second instance", factory::get, problems);
        if (second != null && name != null) {
            String otherName = spi("name() of a second instance", second::name, problems);
            Integer otherPriority = spi("priority() of a second instance", second::priority, problems);
            if (otherName != null && !otherName.equals(name)) {
                problems.add("a second instance is named '" + otherName + "', the first '" + name + "'");
            }
            if (otherPriority != null && priority != null && !otherPriority.equals(priority)) {
                problems.add("a second instance has priority " + otherPriority + ", the first " + priority);
            }
        }
        constructorDoesNoWork(backend.getClass(), problems);
        if (!problems.isEmpty()) {
            throw new RuleFailure(backend.getClass().getName() + " breaks the SPI contract (DESIGN section 4): "
                    + String.join("; ", problems), Double.NaN);
        }
        return Double.NaN;
    }

    /** Calls one SPI method, noting a throw (and returning null). */
    private static <T> T spi(String what, Supplier<T> call, List<String> problems) {
        try {
            return call.get();
        } catch (RuntimeException | Error e) {
            problems.add(what + " threw " + e);
            return null;
        }
    }

    /**
     * The no-argument constructor exists, is public, never throws, starts no thread and is cheap:
     * the first call (class loading) aside, the fastest of three takes at most
     * {@value #CONSTRUCTOR_SECONDS} s. A thread counts only when it is new after two separate
     * constructions, so an unrelated thread starting meanwhile is not blamed on the constructor.
     */
    private static void constructorDoesNoWork(Class<?> type, List<String> problems) {
        if (!LinearMemoryProbe.BackendSource.usable(type, LinearMemoryProbe.BackendSource.Kind.BACKEND)) {
            problems.add(type.getName() + " is not a public class with a public no-argument constructor, which "
                    + "ServiceLoader needs to create it");
            return;
        }
        Constructor<?> constructor;
        try {
            constructor = type.getConstructor();
        } catch (NoSuchMethodException e) {
            problems.add(type.getName() + " has no public no-argument constructor");
            return;
        }
        // Attempt 0 loads the class (its time does not count); later ones are timed.
        double fastest = Double.POSITIVE_INFINITY;
        Set<Thread> startedCold = Set.of();
        boolean startsEveryTime = true;
        Set<String> names = new TreeSet<>();
        for (int attempt = 0; attempt < 4; attempt++) {
            Set<Thread> before = Set.copyOf(Thread.getAllStackTraces().keySet());
            long t0 = System.nanoTime();
            try {
                constructor.newInstance();
            } catch (ReflectiveOperationException | RuntimeException | Error e) {
                Throwable cause = e instanceof InvocationTargetException ite ? ite.getCause() : e;
                problems.add("the no-argument constructor threw " + cause + "; it must never throw (defer work and "
                        + "failures to availability() and plan())");
                return;
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            Set<Thread> fresh = new HashSet<>(Thread.getAllStackTraces().keySet());
            fresh.removeAll(before);
            fresh.removeIf(t -> !t.isAlive());
            fresh.forEach(t -> names.add(t.getName()));
            if (attempt == 0) {
                startedCold = fresh;
            } else {
                fastest = Math.min(fastest, seconds);
                startsEveryTime &= !fresh.isEmpty();
            }
        }
        // A thread the first construction started and that still runs, or a new thread on every construction.
        boolean coldThreadLives = startedCold.stream().anyMatch(Thread::isAlive);
        if (coldThreadLives || startsEveryTime) {
            problems.add("the no-argument constructor starts threads " + names + "; start them in plan() (or lazily)");
        }
        if (fastest > CONSTRUCTOR_SECONDS) {
            problems.add(String.format(Locale.ROOT, "the no-argument constructor takes %.0f ms (at most %.0f ms); it must do"
                    + " no work: load libraries and allocate in availability() or plan()", fastest * 1e3,
                    CONSTRUCTOR_SECONDS * 1e3));
        }
    }

    private static String lastLines(String text, int n) {
        List<String> lines = text.lines().toList();
        return String.join(" | ", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    }
}
