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
}
