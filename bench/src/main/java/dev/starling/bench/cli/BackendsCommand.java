package dev.starling.bench.cli;

import dev.starling.api.selection.BackendReport;
import dev.starling.api.selection.BackendSelector;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code starling backends}: every backend found, its priority, availability and capabilities. */
@Command(name = "backends", mixinStandardHelpOptions = true,
        description = "List every backend on the class path: name, priority, available or why not, capabilities.")
final class BackendsCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        print(spec.commandLine().getOut());
        return 0;
    }

    static void print(PrintWriter out) {
        BackendSelector selector = BackendSelector.discover();
        out.printf("%-12s %8s  %s%n", "backend", "priority", "status / capabilities");
        for (BackendReport r : selector.reports()) {
            out.printf("%-12s %8s  %s%n", r.name(), r.priority() == Integer.MIN_VALUE ? "-" : String.valueOf(r.priority()),
                    r.availability());
            if (r.capabilities() != null) {
                out.printf("%-12s %8s  %s%n", "", "", r.capabilities().summary());
            }
            if (r.backend() != null && !r.backend().options().isEmpty()) {
                out.printf("%-12s %8s  %s%n", "", "", "options (run --option NAME=VALUE): " + r.backend().options().stream()
                        .map(o -> o.name() + (o.property() != null ? " [-D" + o.property() + "]" : "")).collect(
                                java.util.stream.Collectors.joining(", ")));
            }
        }
        if (selector.reports().isEmpty()) {
            out.println("(no backend found on the class path)");
        }
        selector.requestedName().ifPresent(n -> out.println("requested by -D" + BackendSelector.PROPERTY + " or "
                + BackendSelector.ENVIRONMENT + ": " + n));
        out.flush();
    }
}
