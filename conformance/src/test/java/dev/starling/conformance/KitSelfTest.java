package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.conformance.FlawedBackend.Flaw;
import java.util.ArrayList;
import java.util.List;
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
    })
    void eachBrokenBackendIsCaughtByItsRule(Flaw flaw, Rule rule) {
        RuleResult r = check(flaw, rule);
        assertEquals(RuleResult.Status.FAIL, r.status(), flaw + " passed " + rule + ": " + r.detail());
        assertTrue(!r.detail().isBlank(), "a failure says what went wrong");
    }

    @Test
    void failuresNameTheWorstElementAndTheSeed() {
        RuleResult r = check(Flaw.SCALE_MISSING, Rule.R01_OUTPUT_MATCHES_ORACLE);
        assertTrue(r.detail().matches("(?s).*at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*"), r.detail());
        assertTrue(r.seed() != 0);
        assertTrue(r.worstRatio() > 1);
    }

    @Test
    void optionalRulesSkipNamingTheCapability() {
        dev.starling.api.Capabilities none = new dev.starling.api.Capabilities(
                java.util.EnumSet.of(dev.starling.api.Precision.FP32), false, false, false, false, false, 1, 256, "cpu");
        assertEquals("CAUSAL", ConformanceRules.missingCapability(Rule.R03_CAUSAL, none));
        assertEquals("LSE", ConformanceRules.missingCapability(Rule.R06_LSE, none));
    }
}
