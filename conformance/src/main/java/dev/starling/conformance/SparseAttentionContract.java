package dev.starling.conformance;

import dev.starling.api.SparseAttention;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The conformance contract as JUnit 5 tests: extend this class in your backend's tests and
 * implement {@link #createBackend()}. Each test is named after a rule of {@code RULES.md}.
 * Required rules fail with the worst element and the seed; optional rules skip, saying which
 * capability to declare; every rule skips with the reason when the backend is unavailable here.
 *
 * <pre>{@code
 * class MyBackendConformanceTest extends SparseAttentionContract {
 *     protected SparseAttention createBackend() { return new MyBackend(); }
 * }
 * }</pre>
 *
 * <p>Override {@link #seed()} to replay a failure printed with another seed.
 */
public abstract class SparseAttentionContract {

    /** @return a new instance of the backend under test */
    protected abstract SparseAttention createBackend();

    /** @return the base seed of the generated cases */
    protected long seed() {
        return ConformanceRules.DEFAULT_SEED;
    }

    private void check(Rule rule) {
        RuleResult r = new ConformanceRules(this::createBackend, seed()).check(rule);
        switch (r.status()) {
            case PASS -> {
            }
            case SKIPPED -> Assumptions.abort(rule.testName() + " skipped: " + r.detail());
            case FAIL -> Assertions.fail(rule.testName() + " (see conformance/RULES.md, rule " + rule.number() + ")"
                    + (r.seed() != 0 ? ", seed " + r.seed() : "") + ": " + r.detail());
        }
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
}
