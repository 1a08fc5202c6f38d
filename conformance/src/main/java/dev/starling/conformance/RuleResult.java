package dev.starling.conformance;

/**
 * The outcome of one rule for one backend.
 *
 * @param rule the rule
 * @param status pass, fail or skipped
 * @param detail for a failure, the case (with its own case seed), the worst element or what went wrong; for a
 *               skip, what to declare
 * @param worstRatio worst error as a fraction of the tolerance (NaN where no numbers were compared)
 * @param seed the run seed a failure happened with: the base seed of every case of the run, which
 *             {@code --seed} and {@code -Dstarling.conformance.seed} take back to replay it ({@code 0} unless
 *             failed)
 * @param naiveRatio where the rule compares with the naive same-precision implementation (rule 51), the largest
 *                   ratio of the backend's error against float64 to that implementation's; NaN elsewhere
 */
public record RuleResult(Rule rule, Status status, String detail, double worstRatio, long seed, double naiveRatio) {

    /**
     * A result without a naive ratio.
     *
     * @param rule the rule
     * @param status pass, fail or skipped
     * @param detail see the record
     * @param worstRatio worst error as a fraction of the tolerance
     * @param seed the run seed of a failure
     */
    public RuleResult(Rule rule, Status status, String detail, double worstRatio, long seed) {
        this(rule, status, detail, worstRatio, seed, Double.NaN);
    }

    /**
     * @param ratio the naive ratio
     * @return this result with that naive ratio
     */
    RuleResult withNaiveRatio(double ratio) {
        return new RuleResult(rule, status, detail, worstRatio, seed, ratio);
    }

    /** Outcome of a rule. */
    public enum Status {
        /** The rule held. */
        PASS,
        /** The rule was broken. */
        FAIL,
        /** The rule did not run, for the reason in {@code detail}. */
        SKIPPED
    }

    static RuleResult pass(Rule rule, double worstRatio) {
        return new RuleResult(rule, Status.PASS, "", worstRatio, 0);
    }

    static RuleResult fail(Rule rule, String detail, double worstRatio, long runSeed) {
        return new RuleResult(rule, Status.FAIL, detail, worstRatio, runSeed);
    }

    static RuleResult skip(Rule rule, String why) {
        return new RuleResult(rule, Status.SKIPPED, why, Double.NaN, 0);
    }

    /**
     * The command line that runs this rule again with the same run seed, so the same cases in the
     * same order: {@code starling conformance --backend NAME --seed S --only N}.
     *
     * @param backendName the backend's name
     * @return the command
     */
    public String replayCommand(String backendName) {
        return "starling conformance --backend " + backendName + " --seed " + seed + " --only " + rule.number();
    }

    /**
     * The system properties that make {@link SparseAttentionContract} run this rule again with the
     * same run seed: {@code -Dstarling.conformance.seed=S -Dstarling.conformance.only=N}.
     *
     * @return the properties, as on a {@code mvn} command line
     */
    public String replayProperties() {
        return "-D" + SparseAttentionContract.SEED_PROPERTY + "=" + seed + " -D" + SparseAttentionContract.ONLY_PROPERTY
                + "=" + rule.number();
    }
}
