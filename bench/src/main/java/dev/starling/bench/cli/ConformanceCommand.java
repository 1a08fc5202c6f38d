package dev.starling.bench.cli;

import dev.starling.conformance.ConformanceRules;
import dev.starling.conformance.ConformanceRunner;
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
        boolean passed = ConformanceRunner.runDiscovered(backend, seed != null ? seed : ConformanceRules.DEFAULT_SEED, quick,
                spec.commandLine().getOut());
        return passed ? 0 : StarlingCli.CHECK_FAILED;
    }
}
