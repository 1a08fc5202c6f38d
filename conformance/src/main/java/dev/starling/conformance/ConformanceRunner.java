package dev.starling.conformance;

import dev.starling.api.SparseAttention;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * The conformance rules without JUnit, for {@code starling conformance} and for build scripts:
 * runs every rule against one backend and prints a table.
 */
public final class ConformanceRunner {

    private ConformanceRunner() {
    }

    /**
     * Runs the rules.
     *
     * @param factory creates the backend under test
     * @param seed base seed of the generated cases
     * @param quick skip the slow linear-memory rule (19)
     * @return one result per rule, in rule order
     */
    public static List<RuleResult> run(Supplier<SparseAttention> factory, long seed, boolean quick) {
        ConformanceRules rules = new ConformanceRules(factory, seed);
        List<RuleResult> results = new ArrayList<>();
        for (Rule rule : Rule.values()) {
            if (quick && rule == Rule.R19_LINEAR_MEMORY) {
                results.add(RuleResult.skip(rule, "--quick skips this rule; run without --quick"));
                continue;
            }
            results.add(rules.check(rule));
        }
        return results;
    }

    /** @return whether no rule failed (skips do not count as failures) */
    public static boolean passed(List<RuleResult> results) {
        return results.stream().noneMatch(r -> r.status() == RuleResult.Status.FAIL);
    }

    /**
     * Prints a table: rule, result, worst error against tolerance, seed, and the detail of
     * failures and skips.
     *
     * @param backendName shown in the heading
     * @param results the results
     * @param out where to print
     */
    public static void print(String backendName, List<RuleResult> results, PrintWriter out) {
        out.printf("conformance of backend '%s'%n", backendName);
        out.printf("  %-48s %-7s %-12s %s%n", "rule", "result", "worst/tol", "seed / detail");
        for (RuleResult r : results) {
            String worst = Double.isNaN(r.worstRatio()) ? "-" : String.format("%.3g", r.worstRatio());
            String tail = switch (r.status()) {
                case PASS -> "";
                case SKIPPED -> r.detail();
                case FAIL -> (r.seed() != 0 ? "seed " + r.seed() + ": " : "") + r.detail();
            };
            out.printf("  %-48s %-7s %-12s %s%n", r.rule().testName(), r.status().name().toLowerCase(), worst, tail);
        }
        long failed = results.stream().filter(r -> r.status() == RuleResult.Status.FAIL).count();
        long skipped = results.stream().filter(r -> r.status() == RuleResult.Status.SKIPPED).count();
        out.printf("  %d passed, %d failed, %d skipped%n", results.size() - failed - skipped, failed, skipped);
        out.flush();
    }
}
