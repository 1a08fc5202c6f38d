package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Capabilities;
import dev.starling.api.Precision;
import dev.starling.conformance.FlawedBackend.Flaw;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The kit tests itself: a correct backend passes every rule; each broken one is caught by its rule. */
class KitSelfTest {

    private static RuleResult check(Flaw flaw, Rule rule) {
        return new ConformanceRules(() -> new FlawedBackend(flaw), ConformanceRules.DEFAULT_SEED).check(rule);
    }

    @Test
    void aCorrectBackendPassesEveryRule() {
        List<String> problems = new ArrayList<>();
        for (Rule rule : Rule.values()) {
            if (rule == Rule.R19_LINEAR_MEMORY) {
                continue; // The flawed backends are O(N^2) by design; rule 19 is exercised by the reference backend.
            }
            RuleResult r = check(Flaw.NONE, rule);
            if (r.status() != RuleResult.Status.PASS) {
                problems.add(rule.testName() + ": " + r.status() + " " + r.detail());
            }
        }
        assertTrue(problems.isEmpty(), problems.stream().collect(Collectors.joining("\n")));
    }

    @ParameterizedTest(name = "{0} is caught by {1}")
    @CsvSource({
        "WINDOW_OFF_BY_ONE, R01_OUTPUT_MATCHES_ORACLE",
        "DUPLICATE_BLOCK, R01_OUTPUT_MATCHES_ORACLE",
        "SCALE_MISSING, R01_OUTPUT_MATCHES_ORACLE",
        "NO_MAX_SHIFT, R07_HUGE_LOGITS",
        "WRITES_INPUT, R10_INPUTS_NOT_MODIFIED",
        "SHARED_SCRATCH, R12_THREAD_SAFE",
        "TAIL_PAST_END, R02_PARTIAL_TAIL_BLOCKS",
        "EMPTY_ROWS_UNWRITTEN, R09_EVERY_ELEMENT_WRITTEN",
        "VALUE_NAN_POISONS_ROW, R20_NON_FINITE_INPUTS",
        "NEG_INF_SCORE_POISONS_ROW, R20_NON_FINITE_INPUTS",
        "INF_VALUE_BECOMES_NAN, R20_NON_FINITE_INPUTS",
        "LSE_LOG2, R21_KEY_SPLITS_MERGE",
        "LSE_MISSES_MAX, R21_KEY_SPLITS_MERGE",
    })
    void eachBrokenBackendIsCaughtByItsRule(Flaw flaw, Rule rule) {
        RuleResult r = check(flaw, rule);
        assertEquals(RuleResult.Status.FAIL, r.status(), flaw + " passed " + rule + ": " + r.detail());
        assertTrue(!r.detail().isBlank(), "a failure says what went wrong");
    }

    /**
     * The flaws of the new rules fail exactly the rules listed, no fewer and no more (rule 19, a child
     * JVM, aside). The non-finite flaws are seen by rule 20 alone: no other rule puts a NaN into a value
     * without its key, a {@code −∞} score or an infinity anywhere. A wrong LSE is wrong on a whole layout
     * too, so rules 6, 8 and 20 see the LSE flaws as well; rule 21 must see them through the merged
     * output ({@link #lseFlawsCorruptTheMergedOutput}).
     */
    @ParameterizedTest(name = "{0} fails exactly rules {1}")
    @CsvSource({
        "VALUE_NAN_POISONS_ROW, 20",
        "NEG_INF_SCORE_POISONS_ROW, 20",
        "INF_VALUE_BECOMES_NAN, 20",
        "LSE_LOG2, 6 8 20 21",
        "LSE_MISSES_MAX, 6 8 20 21",
    })
    void eachNewFlawFailsExactlyItsRules(Flaw flaw, String rules) {
        Set<Integer> expected = Arrays.stream(rules.split(" ")).map(Integer::valueOf).collect(Collectors.toCollection(TreeSet::new));
        Set<Integer> failed = new TreeSet<>();
        for (Rule rule : Rule.values()) {
            if (rule != Rule.R19_LINEAR_MEMORY && check(flaw, rule).status() == RuleResult.Status.FAIL) {
                failed.add(rule.number());
            }
        }
        assertEquals(expected, failed, flaw + " should fail exactly rules " + expected);
    }

    @Test
    void lseFlawsCorruptTheMergedOutput() {
        for (Flaw flaw : new Flaw[] {Flaw.LSE_LOG2, Flaw.LSE_MISSES_MAX}) {
            RuleResult r = check(flaw, Rule.R21_KEY_SPLITS_MERGE);
            assertTrue(r.detail().matches("(?s).*disjoint key-block sets.*merged in order: output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\).*"),
                    r.detail());
        }
    }

    @Test
    void nonFiniteFailuresNameTheInjectionAndTheFirstMismatch() {
        RuleResult r = check(Flaw.INF_VALUE_BECOMES_NAN, Rule.R20_NON_FINITE_INPUTS);
        assertTrue(r.detail().matches("(?s)case .*\\[seed -?\\d+, .* with (Infinity|-Infinity) in v at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\) "
                + "\\(.*\\): output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): NaN vs expected (Infinity|-Infinity) .*"), r.detail());
        assertTrue(r.seed() != 0);
    }

    @Test
    void failuresNameTheWorstElementAndTheSeed() {
        RuleResult r = check(Flaw.SCALE_MISSING, Rule.R01_OUTPUT_MATCHES_ORACLE);
        assertTrue(r.detail().matches("(?s).*at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*"), r.detail());
        assertTrue(r.seed() != 0);
        assertTrue(r.worstRatio() > 1);
    }

    @Test
    void aBackendWithoutOptionalFeaturesRunsRule20AndSkipsRule21NamingLse() {
        Capabilities bare = new Capabilities(EnumSet.of(Precision.FP32), false, false, false, false, false, 1, 256, "cpu");
        ConformanceRules rules = new ConformanceRules(() -> new FlawedBackend(Flaw.NONE, bare), ConformanceRules.DEFAULT_SEED);
        RuleResult nonFinite = rules.check(Rule.R20_NON_FINITE_INPUTS);
        assertEquals(RuleResult.Status.PASS, nonFinite.status(), nonFinite.detail());
        RuleResult merge = rules.check(Rule.R21_KEY_SPLITS_MERGE);
        assertEquals(RuleResult.Status.SKIPPED, merge.status());
        assertTrue(merge.detail().contains("does not declare LSE"), merge.detail());
        RuleResult caught = new ConformanceRules(() -> new FlawedBackend(Flaw.VALUE_NAN_POISONS_ROW, bare),
                ConformanceRules.DEFAULT_SEED).check(Rule.R20_NON_FINITE_INPUTS);
        assertEquals(RuleResult.Status.FAIL, caught.status(), "rule 20 checks the output without LSE too");
    }

    @Test
    void optionalRulesSkipNamingTheCapability() {
        dev.starling.api.Capabilities none = new dev.starling.api.Capabilities(
                java.util.EnumSet.of(dev.starling.api.Precision.FP32), false, false, false, false, false, 1, 256, "cpu");
        assertEquals("CAUSAL", ConformanceRules.missingCapability(Rule.R03_CAUSAL, none));
        assertEquals("LSE", ConformanceRules.missingCapability(Rule.R06_LSE, none));
        assertEquals("LSE", ConformanceRules.missingCapability(Rule.R21_KEY_SPLITS_MERGE, none));
    }
}
