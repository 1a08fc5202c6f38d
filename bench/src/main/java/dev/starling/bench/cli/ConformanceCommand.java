package dev.starling.bench.cli;

import dev.starling.api.Availability;
import dev.starling.api.SparseAttention;
import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
import dev.starling.conformance.ConformanceRules;
import dev.starling.conformance.ConformanceRunner;
import dev.starling.conformance.Rule;
import dev.starling.conformance.RuleResult;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code starling conformance}: the conformance rules against one or every backend on the class path.
 *
 * <p>A backend that cannot run here (unavailable, or its provider failed to load) is not run at
 * all: it is reported in one line with its reason. Named alone, it makes the command exit with
 * {@link StarlingCli#NOT_RUN}, since it neither passed nor failed; with {@code --backend all} the
 * command passes when every backend that can run passes, and lists the others once each, unless
 * {@code --require-available} is given: then a backend that cannot run makes the command exit with
 * {@link StarlingCli#NOT_RUN} too. {@code --no-require-available} lets a named backend that cannot run
 * exit 0. {@code --only} runs the named rules; a failure prints the run seed and the replay command.
 */
@Command(name = "conformance", mixinStandardHelpOptions = true,
        description = {"Check backends against dense float64 attention, rule by rule (conformance/RULES.md).",
            "Exit 0: every backend that ran passed; 1: a rule failed; 4: not run, no backend",
            "named could run here (e.g. --backend cuda without a GPU)."})
final class ConformanceCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--backend", defaultValue = "all", paramLabel = "NAME|all",
            description = "backend to check (default: ${DEFAULT-VALUE}); one that cannot run here is reported with its reason")
    String backend;

    @Option(names = "--quick", description = "skip the slow linear-memory rule (19); finishes in well under a minute")
    boolean quick;

    @Option(names = "--seed", paramLabel = "N", description = "run seed of the generated cases (default: the kit's); "
            + "a failure prints the one that replays it")
    Long seed;

    @Option(names = "--only", paramLabel = "RULES", description = "run only these rules: numbers or test names, "
            + "comma-separated (e.g. 22 or 12,required_rule22_featureCombinations)")
    String only;

    @Option(names = "--require-available", negatable = true, description = "a backend that cannot run here does not "
            + "pass: exit 4 (default: on when one backend is named)")
    Boolean requireAvailable;

    /** Where the backends come from; tests put in backends that cannot run. */
    Supplier<BackendSelector> backends = BackendSelector::discover;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        BackendSelector selector = backends.get();
        boolean all = backend.equalsIgnoreCase("all");
        boolean require = requireAvailable != null ? requireAvailable : !all;
        ConformanceRunner.Options options = ConformanceRunner.Options.defaults()
                .withSeed(seed != null ? seed : ConformanceRules.DEFAULT_SEED).withQuick(quick)
                .withOnly(Rule.parseList(only)).withRequireAvailable(require);
        List<BackendReport> targets = new ArrayList<>();
        for (BackendReport r : selector.reports()) {
            if (all || r.name().equalsIgnoreCase(backend)) {
                targets.add(r);
            }
        }
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no backend named '" + backend + "' on the class path; found "
                    + selector.reports().stream().map(BackendReport::name).toList());
        }
        List<String> notRun = new ArrayList<>();
        int ran = 0;
        boolean allPassed = true;
        for (BackendReport r : targets) {
            if (!r.usable()) {
                notRun.add(r.name() + ": " + reason(r.availability()));
                continue;
            }
            Class<? extends SparseAttention> type = r.backend().getClass();
            List<RuleResult> results = ConformanceRunner.run(() -> newInstance(type, r.backend()), options);
            ConformanceRunner.print(r.name(), results, out);
            out.println();
            if (results.stream().noneMatch(x -> x.status() != RuleResult.Status.SKIPPED)) {
                // Available when probed, yet no rule could run: it still has not passed anything.
                notRun.add(r.name() + ": every rule was skipped"
                        + results.stream().findFirst().map(x -> " (" + x.detail() + ")").orElse(""));
                continue;
            }
            ran++;
            allPassed &= ConformanceRunner.passed(results);
        }
        for (String line : notRun) {
            out.println("not run, cannot run here: " + line);
        }
        out.flush();
        if (!allPassed) {
            return StarlingCli.CHECK_FAILED;
        }
        if (require && !notRun.isEmpty()) {
            return StarlingCli.NOT_RUN;
        }
        if (ran == 0 && !Boolean.FALSE.equals(requireAvailable)) {
            if (all) {
                out.println("no backend could run here, so none passed");
                out.flush();
            }
            return StarlingCli.NOT_RUN;
        }
        return StarlingCli.OK;
    }

    private static String reason(Availability a) {
        return a.isAvailable() ? "its provider could not be loaded" : a.reason();
    }

    /** A fresh instance per rule (the SPI guarantees a no-argument constructor); the found one otherwise. */
    private static SparseAttention newInstance(Class<? extends SparseAttention> type, SparseAttention fallback) {
        try {
            return type.getConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            return fallback;
        }
    }
}
