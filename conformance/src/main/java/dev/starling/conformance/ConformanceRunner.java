package dev.starling.conformance;

import dev.starling.api.SparseAttention;
import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The conformance rules without JUnit, for {@code starling conformance} and for build scripts:
 * runs the rules against one backend and prints a table, with a replay command for each failure.
 */
public final class ConformanceRunner {

    private ConformanceRunner() {
    }

    /**
     * How a run goes.
     *
     * @param seed the run seed: the base seed of every generated case; a failure prints it
     * @param quick skip the slow linear-memory rule (19)
     * @param only the rules to run (the others are left out of the results)
     * @param requireAvailable whether a backend that cannot run here fails instead of being skipped
     */
    public record Options(long seed, boolean quick, Set<Rule> only, boolean requireAvailable) {
        /** Copies the rule set. */
        public Options {
            only = only.isEmpty() ? Set.of() : Collections.unmodifiableSet(EnumSet.copyOf(only));
        }

        /** @return every rule, the default seed, not quick, an unavailable backend skipped */
        public static Options defaults() {
            return new Options(ConformanceRules.DEFAULT_SEED, false, EnumSet.allOf(Rule.class), false);
        }

        /** @param s the run seed @return these options with that seed */
        public Options withSeed(long s) {
            return new Options(s, quick, only, requireAvailable);
        }

        /** @param q whether to skip rule 19 @return these options with that setting */
        public Options withQuick(boolean q) {
            return new Options(seed, q, only, requireAvailable);
        }

        /** @param rules the rules to run @return these options with that selection */
        public Options withOnly(Set<Rule> rules) {
            return new Options(seed, quick, rules, requireAvailable);
        }

        /** @param require whether an unavailable backend fails @return these options with that setting */
        public Options withRequireAvailable(boolean require) {
            return new Options(seed, quick, only, require);
        }
    }

    /**
     * Runs every rule.
     *
     * @param factory creates the backend under test
     * @param seed the run seed
     * @param quick skip the slow linear-memory rule (19)
     * @return one result per rule, in rule order
     */
    public static List<RuleResult> run(Supplier<SparseAttention> factory, long seed, boolean quick) {
        return run(factory, Options.defaults().withSeed(seed).withQuick(quick));
    }

    /**
     * Runs the selected rules.
     *
     * @param factory creates the backend under test (once per rule)
     * @param options seed, quick, selection, availability
     * @return one result per selected rule, in rule order
     */
    public static List<RuleResult> run(Supplier<SparseAttention> factory, Options options) {
        ConformanceRules rules = new ConformanceRules(factory, options.seed()).requireAvailable(options.requireAvailable());
        List<RuleResult> results = new ArrayList<>();
        for (Rule rule : options.only()) {
            if (options.quick() && rule == Rule.R19_LINEAR_MEMORY) {
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
     * Prints a table: rule, result, the worst error as a fraction of the rule's tolerance ({@code worst/tol},
     * {@code -} for rules that compare no numbers), the ratio of the backend's error to the naive
     * same-precision implementation's where the rule measures it ({@code vs naive}: rule 51), and the
     * detail of failures and skips; under each failure, the run seed and the command that replays it.
     *
     * @param backendName shown in the heading and in the replay commands
     * @param results the results
     * @param out where to print
     */
    public static void print(String backendName, List<RuleResult> results, PrintWriter out) {
        out.printf("conformance of backend '%s'%n", backendName);
        out.printf("  %-48s %-7s %-10s %-9s %s%n", "rule", "result", "worst/tol", "vs naive", "detail");
        for (RuleResult r : results) {
            String worst = Double.isNaN(r.worstRatio()) ? "-" : String.format(Locale.ROOT, "%.3g", r.worstRatio());
            String naive = Double.isNaN(r.naiveRatio()) ? "-" : String.format(Locale.ROOT, "%.3g", r.naiveRatio());
            String tail = r.status() == RuleResult.Status.PASS ? "" : r.detail();
            out.printf("  %-48s %-7s %-10s %-9s %s%n", r.rule().testName(), r.status().name().toLowerCase(), worst, naive,
                    tail);
            if (r.status() == RuleResult.Status.FAIL) {
                out.printf("  %-48s run seed %d; replay: %s%n", "", r.seed(), r.replayCommand(backendName));
            }
        }
        long failed = results.stream().filter(r -> r.status() == RuleResult.Status.FAIL).count();
        long skipped = results.stream().filter(r -> r.status() == RuleResult.Status.SKIPPED).count();
        out.printf("  %d passed, %d failed, %d skipped%n", results.size() - failed - skipped, failed, skipped);
        out.flush();
    }

    /**
     * Command-line entry without the {@code starling} tool (for a thin class path, e.g. on a GPU
     * machine): {@code java -cp api.jar:conformance.jar:my-backend.jar dev.starling.conformance.ConformanceRunner
     * [--backend NAME|all] [--quick] [--seed N] [--only RULES] [--require-available|--no-require-available]}.
     * {@code --require-available} is on when one backend is named. Exit 0 when no rule failed (and,
     * with {@code --require-available}, every backend could run), 1 otherwise, 2 on bad usage.
     *
     * @param args the arguments
     */
    public static void main(String[] args) {
        String name = "all";
        Options options = Options.defaults();
        Boolean require = null;
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--backend" -> name = value(args, ++i);
                    case "--quick" -> options = options.withQuick(true);
                    case "--seed" -> options = options.withSeed(Long.parseLong(value(args, ++i)));
                    case "--only" -> options = options.withOnly(Rule.parseList(value(args, ++i)));
                    case "--require-available" -> require = true;
                    case "--no-require-available" -> require = false;
                    default -> throw new IllegalArgumentException("unknown argument " + args[i]);
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println("usage: ConformanceRunner [--backend NAME|all] [--quick] [--seed N] [--only RULES]"
                    + " [--require-available|--no-require-available]");
            System.exit(2);
            return;
        }
        options = options.withRequireAvailable(require != null ? require : !name.equalsIgnoreCase("all"));
        boolean ok;
        try {
            ok = runDiscovered(name, options, new PrintWriter(System.out, true));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        System.exit(ok ? 0 : 1);
    }

    private static String value(String[] args, int i) {
        if (i >= args.length) {
            throw new IllegalArgumentException(args[i - 1] + " needs a value");
        }
        return args[i];
    }

    /**
     * Runs every rule against the discovered backends ({@link BackendSelector#discover()}) with
     * this name, or every one; a backend that cannot run is listed and not run.
     *
     * @param name a backend name, or {@code "all"}; case is ignored
     * @param seed the run seed
     * @param quick skip the slow linear-memory rule (19)
     * @param out where to print
     * @return whether no rule failed
     * @throws IllegalArgumentException if no backend has that name, listing those found
     */
    public static boolean runDiscovered(String name, long seed, boolean quick, PrintWriter out) {
        return runDiscovered(name, Options.defaults().withSeed(seed).withQuick(quick), out);
    }

    /**
     * Runs the rules against the discovered backends ({@link BackendSelector#discover()}) with this
     * name, or every one, and prints a table for each. A backend that cannot run here (its
     * provider could not be loaded, or it is unavailable) is listed with the reason and not run;
     * with {@link Options#requireAvailable()} that counts as a failure. One broken provider never
     * stops the others.
     *
     * @param name a backend name, or {@code "all"}; case is ignored
     * @param options seed, quick, selection, availability
     * @param out where to print
     * @return whether no rule failed (and, with {@code requireAvailable}, every backend ran)
     * @throws IllegalArgumentException if no backend has that name, listing those found
     */
    public static boolean runDiscovered(String name, Options options, PrintWriter out) {
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
            if (!r.usable()) {
                out.printf("conformance of backend '%s': not run, %s%s%n%n", r.name(),
                        r.backend() == null ? "its provider could not be loaded: " : "", r.availability());
                if (options.requireAvailable()) {
                    out.printf("  a backend that cannot run cannot pass (--require-available): failed%n%n");
                    allPassed = false;
                }
                continue;
            }
            Class<? extends SparseAttention> type = r.backend().getClass();
            List<RuleResult> results = run(() -> newInstance(type, r.backend()), options);
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
