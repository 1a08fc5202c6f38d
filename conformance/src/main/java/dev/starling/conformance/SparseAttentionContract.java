package dev.starling.conformance;

import dev.starling.api.Feature;
import dev.starling.api.SparseAttention;
import java.util.EnumMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInfo;

/**
 * The conformance contract as JUnit 5 tests: extend this class in your backend's tests and
 * implement {@link #createBackend()}. Each test is named after a rule of {@code RULES.md}.
 * Required rules fail with the case, the worst element, the run seed and a replay command;
 * optional rules skip, saying which capability to declare, except the gradient rules (27 to 37, 45
 * and 46), which exist only for a backend that declares {@code backward}; every rule skips with the
 * reason when the backend is unavailable here (or fails, with {@value #REQUIRE_AVAILABLE_PROPERTY}).
 *
 * <pre>{@code
 * class MyBackendConformanceTest extends SparseAttentionContract {
 *     protected SparseAttention createBackend() { return new MyBackend(); }
 * }
 * }</pre>
 *
 * <p>System properties (Surefire passes {@code -D} options of the {@code mvn} command line on):
 * <ul>
 *   <li>{@value #SEED_PROPERTY}: the run seed, to replay a failure printed with it;</li>
 *   <li>{@value #ONLY_PROPERTY}: run only these rules (numbers or test names, comma-separated), skip the rest;</li>
 *   <li>{@value #REQUIRE_AVAILABLE_PROPERTY}: {@code true} makes a backend that cannot run here fail every rule
 *       instead of skipping it, so a CI job cannot pass without running a rule.</li>
 * </ul>
 * After the last rule, one line on standard output says how many rules ran and passed:
 * {@code starling conformance: MyBackendConformanceTest, backend 'mine', run seed 20261128: 51 rules, 51 passed, 0 failed, 0 skipped}.
 *
 * <p>Rule 19 runs the backend in a child JVM with a 1 GB heap. The child builds it as your test class
 * does: it creates this class with its no-argument constructor and calls {@link #createBackend()},
 * so a configured instance is checked. When your class has no such constructor, override
 * {@link #memoryRuleBackendSupplier()}; without either, the child uses the backend class's public
 * no-argument constructor.
 */
public abstract class SparseAttentionContract {
    /** System property: the run seed (default {@link ConformanceRules#DEFAULT_SEED}). */
    public static final String SEED_PROPERTY = "starling.conformance.seed";
    /** System property: the rules to run, e.g. {@code 22} or {@code 12,required_rule22_featureCombinations}. */
    public static final String ONLY_PROPERTY = "starling.conformance.only";
    /** System property: {@code true} turns "backend unavailable here" from a skip into a failure. */
    public static final String REQUIRE_AVAILABLE_PROPERTY = "starling.conformance.requireAvailable";

    /** Results per contract class, for the summary line after the last rule. */
    private static final Map<Class<?>, Summary> RESULTS = new ConcurrentHashMap<>();

    /** For subclasses: a backend's contract test, created by JUnit. */
    protected SparseAttentionContract() {
    }

    private record Summary(String backend, long seed, Map<Rule, RuleResult> results) {
    }

    /** @return a new instance of the backend under test */
    protected abstract SparseAttention createBackend();

    /**
     * @return the run seed: {@value #SEED_PROPERTY} when set, else {@link ConformanceRules#DEFAULT_SEED}
     * @throws IllegalArgumentException when the property is not a number
     */
    protected long seed() {
        String s = System.getProperty(SEED_PROPERTY);
        if (s == null || s.isBlank()) {
            return ConformanceRules.DEFAULT_SEED;
        }
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + SEED_PROPERTY + "=" + s + " is not a number", e);
        }
    }

    /** @return whether an unavailable backend fails every rule: {@value #REQUIRE_AVAILABLE_PROPERTY}, default false */
    protected boolean requireAvailable() {
        return Boolean.parseBoolean(System.getProperty(REQUIRE_AVAILABLE_PROPERTY, "false").strip());
    }

    /** @return the rules to run: those {@value #ONLY_PROPERTY} names, or every rule when it is unset or blank */
    protected Set<Rule> onlyRules() {
        String only = System.getProperty(ONLY_PROPERTY);
        return Rule.parseList(only == null || only.isBlank() ? null : only);
    }

    /**
     * How rule 19's child JVM builds the backend when it cannot create this class with a
     * no-argument constructor: a public class with a public no-argument constructor whose
     * {@code get()} returns the configured backend.
     *
     * @return the supplier class, or {@code null} (the default) to create this class and call {@link #createBackend()}
     */
    protected Class<? extends Supplier<? extends SparseAttention>> memoryRuleBackendSupplier() {
        return null;
    }

    /** @return the child-JVM source of rule 19 for this contract, or null for the backend class's constructor */
    LinearMemoryProbe.BackendSource memoryRuleSource() {
        Class<? extends Supplier<? extends SparseAttention>> supplier = memoryRuleBackendSupplier();
        if (supplier != null) {
            return LinearMemoryProbe.BackendSource.supplierClass(supplier);
        }
        if (LinearMemoryProbe.BackendSource.usable(getClass(), LinearMemoryProbe.BackendSource.Kind.CONTRACT)) {
            return LinearMemoryProbe.BackendSource.contractClass(getClass());
        }
        return null;
    }

    private void check(Rule rule) {
        long runSeed = seed();
        RuleResult r = new ConformanceRules(this::createBackend, runSeed).requireAvailable(requireAvailable())
                .only(onlyRules()).memoryRuleBackend(memoryRuleSource()).check(rule);
        RESULTS.computeIfAbsent(getClass(), c -> new Summary(backendName(), runSeed, new ConcurrentHashMap<>()))
                .results().put(rule, r);
        switch (r.status()) {
            case PASS -> {
            }
            case SKIPPED -> Assumptions.abort(rule.testName() + " skipped: " + r.detail());
            case FAIL -> Assertions.fail(rule.testName() + " (see conformance/RULES.md, rule " + rule.number()
                    + "), run seed " + r.seed() + ": " + r.detail() + "\nreplay: mvn test -Dtest=" + getClass().getSimpleName()
                    + " " + r.replayProperties() + "\n    or: " + r.replayCommand(backendName())
                    + " (the backend's jar on the class path)");
        }
    }

    private String backendName() {
        try {
            return createBackend().name();
        } catch (RuntimeException | Error e) {
            return "?";
        }
    }

    /**
     * Prints how many rules ran, passed, failed and were skipped for the contract class that just
     * finished: the line that shows the rules really ran.
     *
     * @param info the finished test class
     */
    @AfterAll
    static void printSummary(TestInfo info) {
        Summary s = info.getTestClass().map(RESULTS::remove).orElse(null);
        if (s == null) {
            return;
        }
        Map<RuleResult.Status, Long> counts = new EnumMap<>(RuleResult.Status.class);
        for (RuleResult r : s.results().values()) {
            counts.merge(r.status(), 1L, Long::sum);
        }
        System.out.printf("starling conformance: %s, backend '%s', run seed %d: %d rules, %d passed, %d failed, %d skipped%n",
                info.getTestClass().get().getSimpleName(), s.backend(), s.seed(), s.results().size(),
                counts.getOrDefault(RuleResult.Status.PASS, 0L), counts.getOrDefault(RuleResult.Status.FAIL, 0L),
                counts.getOrDefault(RuleResult.Status.SKIPPED, 0L));
    }

    /** Rule 1. */
    @Test
    public void required_rule01_outputMatchesOracle() {
        check(Rule.R01_OUTPUT_MATCHES_ORACLE);
    }

    /** Rule 2. */
    @Test
    public void required_rule02_partialTailBlocks() {
        check(Rule.R02_PARTIAL_TAIL_BLOCKS);
    }

    /** Rule 3. */
    @Test
    public void optional_rule03_causal() {
        check(Rule.R03_CAUSAL);
    }

    /** Rule 4. */
    @Test
    public void optional_rule04_groupedQuery() {
        check(Rule.R04_GROUPED_QUERY);
    }

    /** Rule 5. */
    @Test
    public void optional_rule05_keyAndQueryLengths() {
        check(Rule.R05_KEY_AND_QUERY_LENGTHS);
    }

    /** Rule 6. */
    @Test
    public void optional_rule06_logSumExp() {
        check(Rule.R06_LSE);
    }

    /** Rule 7. */
    @Test
    public void required_rule07_hugeLogits() {
        check(Rule.R07_HUGE_LOGITS);
    }

    /** Rule 8. */
    @Test
    public void required_rule08_emptyRows() {
        check(Rule.R08_EMPTY_ROWS);
    }

    /** Rule 9. */
    @Test
    public void required_rule09_everyElementWritten() {
        check(Rule.R09_EVERY_ELEMENT_WRITTEN);
    }

    /** Rule 10. */
    @Test
    public void required_rule10_inputsNotModified() {
        check(Rule.R10_INPUTS_NOT_MODIFIED);
    }

    /** Rule 11. */
    @Test
    public void required_rule11_deterministic() {
        check(Rule.R11_DETERMINISTIC);
    }

    /** Rule 12. */
    @Test
    public void required_rule12_threadSafeForward() {
        check(Rule.R12_THREAD_SAFE);
    }

    /** Rule 13. */
    @Test
    public void required_rule13_maskedNanNeverLeaks() {
        check(Rule.R13_MASKED_NAN_NEVER_LEAKS);
    }

    /** Rule 14. */
    @Test
    public void required_rule14_allowedNanReachesExactlyItsRows() {
        check(Rule.R14_ALLOWED_NAN_REACHES_ITS_ROWS);
    }

    /** Rule 15. */
    @Test
    public void required_rule15_badInputRefused() {
        check(Rule.R15_BAD_INPUT_REFUSED);
    }

    /** Rule 16. */
    @Test
    public void required_rule16_forwardAfterCloseThrows() {
        check(Rule.R16_FORWARD_AFTER_CLOSE);
    }

    /** Rule 17. */
    @Test
    public void required_rule17_undeclaredFeaturesThrow() {
        check(Rule.R17_UNDECLARED_FEATURES_THROW);
    }

    /** Rule 18. */
    @Test
    public void required_rule18_bothTensorLayouts() {
        check(Rule.R18_TENSOR_LAYOUTS);
    }

    /** Rule 19: slow (a child JVM runs 65,536 tokens); tagged so a quick local run can exclude it. */
    @Test
    @Tag("slow")
    public void required_rule19_linearMemory() {
        check(Rule.R19_LINEAR_MEMORY);
    }

    /** Rule 20. */
    @Test
    public void required_rule20_nonFiniteInputsElementByElement() {
        check(Rule.R20_NON_FINITE_INPUTS);
    }

    /** Rule 21. */
    @Test
    public void optional_rule21_keySplitsMergeToTheWhole() {
        check(Rule.R21_KEY_SPLITS_MERGE);
    }

    /** Rule 22. */
    @Test
    public void required_rule22_featureCombinations() {
        check(Rule.R22_FEATURE_COMBINATIONS);
    }

    /** Rule 23. */
    @Test
    public void required_rule23_longSequences() {
        check(Rule.R23_LONG_SEQUENCES);
    }

    /** Rule 24. */
    @Test
    public void required_rule24_workFollowsAllowedBlocks() {
        check(Rule.R24_WORK_FOLLOWS_ALLOWED_BLOCKS);
    }

    /** Rule 25. */
    @Test
    public void required_rule25_serviceContract() {
        check(Rule.R25_SERVICE_CONTRACT);
    }

    /** Rule 26. */
    @Test
    public void optional_rule26_keyShardsMergeToTheWhole() {
        check(Rule.R26_KEY_SHARDS_MERGE);
    }

    /** Rule 38. */
    @Test
    public void required_rule38_stridedTensors() {
        check(Rule.R38_STRIDED_TENSORS);
    }

    /** Rule 39. */
    @Test
    public void required_rule39_offHeapTensors() {
        check(Rule.R39_OFF_HEAP_TENSORS);
    }

    /** Rule 40. */
    @Test
    public void required_rule40_halfPrecisionTensors() {
        check(Rule.R40_HALF_PRECISION_TENSORS);
    }

    /** Rule 41. */
    @Test
    public void optional_rule41_blockCounts() {
        check(Rule.R41_BLOCK_COUNTS);
    }

    /** Rule 42. */
    @Test
    public void required_rule42_interruptedCalls() {
        check(Rule.R42_INTERRUPTED_CALLS);
    }

    /** Rule 43. */
    @Test
    public void required_rule43_largeFiniteLogits() {
        check(Rule.R43_LARGE_FINITE_LOGITS);
    }

    /** Rule 44. */
    @Test
    public void required_rule44_outputViews() {
        check(Rule.R44_OUTPUT_VIEWS);
    }

    /** Rule 47. */
    @Test
    public void required_rule47_splitRowsRecombine() {
        check(Rule.R47_SPLIT_ROWS_RECOMBINE);
    }

    /** Rule 48. */
    @Test
    public void required_rule48_keysCountedOnce() {
        check(Rule.R48_KEYS_COUNTED_ONCE);
    }

    /** Rule 49. */
    @Test
    public void required_rule49_everyAllowedKeyContributes() {
        check(Rule.R49_EVERY_KEY_CONTRIBUTES);
    }

    /** Rule 50. */
    @Test
    public void required_rule50_poisonedBounds() {
        check(Rule.R50_POISONED_BOUNDS);
    }

    /** Rule 51. */
    @Test
    public void required_rule51_withinTheNaiveErrorBound() {
        check(Rule.R51_NAIVE_ERROR_BOUND);
    }

    /**
     * Rules 27 to 37, 45 and 46, the gradient rules, as one test per rule named like the others
     * ({@code optional_rule27_gradientsMatchOracle} …), for a backend that declares {@code backward}.
     * A backend that does not declare it gets none of them (not eleven skipped tests): rule 17 checks
     * that its {@code backward} is refused. When the backend cannot even be created, one test says so.
     *
     * @return the gradient rules of this backend
     */
    @TestFactory
    public Stream<DynamicTest> optional_rules27to37_gradients() {
        boolean backward;
        try {
            backward = createBackend().capabilities().has(Feature.BACKWARD);
        } catch (RuntimeException | Error e) {
            backward = true;   // each rule then reports why the backend cannot be checked
        }
        if (!backward) {
            return Stream.empty();
        }
        return Rule.gradientRules().stream().map(rule -> DynamicTest.dynamicTest(rule.testName(), () -> check(rule)));
    }
}
