package dev.starling.conformance;

/**
 * The outcome of one rule for one backend.
 *
 * @param rule the rule
 * @param status pass, fail or skipped
 * @param detail for a failure, the worst element or what went wrong; for a skip, what to declare
 * @param worstRatio worst error as a fraction of the tolerance (NaN where no numbers were compared)
 * @param seed the seed that replays a failing case ({@code 0} when none)
 */
public record RuleResult(Rule rule, Status status, String detail, double worstRatio, long seed) {

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

    static RuleResult fail(Rule rule, String detail, double worstRatio, long seed) {
        return new RuleResult(rule, Status.FAIL, detail, worstRatio, seed);
    }

    static RuleResult skip(Rule rule, String why) {
        return new RuleResult(rule, Status.SKIPPED, why, Double.NaN, 0);
    }
}
