package dev.starling.conformance;

import dev.starling.api.SparseAttention;
import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
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

    /**
     * Command-line entry without the {@code starling} tool (for a thin class path, e.g. on a GPU
     * machine): {@code java -cp api.jar:conformance.jar:my-backend.jar dev.starling.conformance.ConformanceRunner
     * [--backend NAME|all] [--quick] [--seed N]}. Exit 0 when no rule failed, 1 otherwise, 2 on bad usage.
     *
     * @param args the arguments
     */
    public static void main(String[] args) {
        String name = "all";
        boolean quick = false;
        long seed = ConformanceRules.DEFAULT_SEED;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--backend" -> name = args[++i];
                case "--quick" -> quick = true;
                case "--seed" -> seed = Long.parseLong(args[++i]);
                default -> {
                    System.err.println("usage: ConformanceRunner [--backend NAME|all] [--quick] [--seed N]");
                    System.exit(2);
                }
            }
        }
        boolean ok;
        try {
            ok = runDiscovered(name, seed, quick, new PrintWriter(System.out, true));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        System.exit(ok ? 0 : 1);
    }

    /**
     * Runs the rules against the discovered backends ({@link BackendSelector#discover()}) with this
     * name, or every one, and prints a table for each. A backend that could not be loaded is listed
     * with the reason and not run; one broken provider never stops the others.
     *
     * @param name a backend name, or {@code "all"}; case is ignored
     * @param seed base seed of the generated cases
     * @param quick skip the slow linear-memory rule (19)
     * @param out where to print
     * @return whether no rule failed
     * @throws IllegalArgumentException if no backend has that name, listing those found
     */
    public static boolean runDiscovered(String name, long seed, boolean quick, PrintWriter out) {
        BackendSelector selector = BackendSelector.discover();
        List<BackendReport> targets = new ArrayList<>();
        for (BackendReport r : selector.reports()) {
            if (name.equalsIgnoreCase("all") || r.name().equalsIgnoreCase(name)) {
                targets.add(r);
            }
        }
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no backend named '" + name + "' on the class path; found "
                    + selector.reports().stream().map(BackendReport::name).toList());
        }
        boolean allPassed = true;
        for (BackendReport r : targets) {
            if (r.backend() == null) {
                out.printf("conformance of backend '%s': not run, %s%n%n", r.name(), r.availability());
                continue;
            }
            Class<? extends SparseAttention> type = r.backend().getClass();
            List<RuleResult> results = run(() -> newInstance(type, r.backend()), seed, quick);
            print(r.name(), results, out);
            out.println();
            allPassed &= passed(results);
        }
        out.flush();
        return allPassed;
    }

    /** A fresh instance per rule (the SPI guarantees a no-argument constructor); the found one otherwise. */
    private static SparseAttention newInstance(Class<? extends SparseAttention> type, SparseAttention found) {
        try {
            return type.getConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            return found;
        }
    }
}
