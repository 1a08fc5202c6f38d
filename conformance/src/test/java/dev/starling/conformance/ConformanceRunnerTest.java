package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runner behind {@code starling conformance} and {@code ConformanceRunner.main}, on discovered backends. */
class ConformanceRunnerTest {

    /**
     * Issue 18, item 4: a provider whose class is missing is listed with its reason and the others
     * still run; with availability required, it makes the run fail.
     */
    @Test
    void aBrokenProviderIsListedAndTheOthersRun(@TempDir Path dir) throws Exception {
        Path services = dir.resolve("META-INF/services/dev.starling.api.SparseAttention");
        Files.createDirectories(services.getParent());
        Files.writeString(services, "com.example.MissingBackend\n" + FlawedBackend.class.getName() + "\n");
        Thread thread = Thread.currentThread();
        ClassLoader before = thread.getContextClassLoader();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
            thread.setContextClassLoader(loader);
            ConformanceRunner.Options options = ConformanceRunner.Options.defaults()
                    .withOnly(EnumSet.of(Rule.R16_FORWARD_AFTER_CLOSE, Rule.R25_SERVICE_CONTRACT));
            StringWriter text = new StringWriter();
            boolean passed = ConformanceRunner.runDiscovered("all", options, new PrintWriter(text));
            String out = text.toString();
            assertTrue(passed, out);
            assertTrue(out.contains("com.example.MissingBackend") && out.contains("not run"), out);
            assertTrue(out.contains("conformance of backend 'flawed-none'") && out.contains("2 passed, 0 failed, 0 skipped"), out);

            StringWriter required = new StringWriter();
            assertFalse(ConformanceRunner.runDiscovered("all", options.withRequireAvailable(true), new PrintWriter(required)),
                    required.toString());
            assertTrue(required.toString().contains("a backend that cannot run cannot pass"), required.toString());
        } finally {
            thread.setContextClassLoader(before);
        }
    }

    /** The table gives, per rule, the worst error against the tolerance and, for rule 51, the ratio to the naive error. */
    @Test
    void theTablePrintsTheWorstErrorAndTheNaiveRatio() {
        java.util.List<RuleResult> results = ConformanceRunner.run(FlawedBackend::new, ConformanceRunner.Options.defaults()
                .withOnly(java.util.EnumSet.of(Rule.R01_OUTPUT_MATCHES_ORACLE, Rule.R51_NAIVE_ERROR_BOUND)));
        java.io.StringWriter text = new java.io.StringWriter();
        ConformanceRunner.print("flawed-none", results, new java.io.PrintWriter(text));
        String[] lines = text.toString().split("\n");
        org.junit.jupiter.api.Assertions.assertTrue(lines[1].matches("\\s+rule\\s+result\\s+worst/tol\\s+vs naive\\s+detail"),
                lines[1]);
        String rule1 = java.util.Arrays.stream(lines).filter(l -> l.contains("rule01")).findFirst().orElseThrow();
        String rule51 = java.util.Arrays.stream(lines).filter(l -> l.contains("rule51")).findFirst().orElseThrow();
        org.junit.jupiter.api.Assertions.assertTrue(rule1.matches("\\s+required_rule01_outputMatchesOracle\\s+pass\\s+0\\.\\d+\\s+-\\s*"),
                rule1);
        org.junit.jupiter.api.Assertions.assertTrue(rule51.matches("\\s+required_rule51_withinTheNaiveErrorBound\\s+pass\\s+0\\.\\d+\\s+[0-9.]+\\s*"),
                rule51);
    }
}
