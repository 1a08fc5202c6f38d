package dev.starling.bench.cli;

import dev.starling.api.SparseAttention;
import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
import dev.starling.conformance.ConformanceRules;
import dev.starling.conformance.ConformanceRunner;
import dev.starling.conformance.RuleResult;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code starling conformance}: the conformance rules against one or every backend on the class path. */
@Command(name = "conformance", mixinStandardHelpOptions = true,
        description = "Check backends against dense float64 attention, rule by rule (conformance/RULES.md). Exit 1 on any failure.")
final class ConformanceCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--backend", defaultValue = "all", paramLabel = "NAME|all",
            description = "backend to check (default: ${DEFAULT-VALUE}); an unavailable one is reported with its reason")
    String backend;

    @Option(names = "--quick", description = "skip the slow linear-memory rule (19); finishes in well under a minute")
    boolean quick;

    @Option(names = "--seed", paramLabel = "N", description = "base seed of the generated cases (default: the kit's)")
    Long seed;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        BackendSelector selector = BackendSelector.discover();
        List<BackendReport> targets = new ArrayList<>();
        for (BackendReport r : selector.reports()) {
            if (backend.equalsIgnoreCase("all") || r.name().equalsIgnoreCase(backend)) {
                targets.add(r);
            }
        }
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no backend named '" + backend + "' on the class path; found "
                    + selector.reports().stream().map(BackendReport::name).toList());
        }
        boolean allPassed = true;
        for (BackendReport r : targets) {
            if (r.backend() == null) {
                out.printf("conformance of backend '%s': not run, %s%n%n", r.name(), r.availability());
                continue;
            }
            Class<? extends SparseAttention> type = r.backend().getClass();
            List<RuleResult> results = ConformanceRunner.run(() -> newInstance(type, r.backend()),
                    seed != null ? seed : ConformanceRules.DEFAULT_SEED, quick);
            ConformanceRunner.print(r.name(), results, out);
            out.println();
            allPassed &= ConformanceRunner.passed(results);
        }
        out.flush();
        return allPassed ? 0 : StarlingCli.CHECK_FAILED;
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
