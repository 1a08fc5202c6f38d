package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Availability;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Available with the incubator module, unavailable naming the flag without it; never fails to load. */
class VectorAvailabilityTest {

    @Test
    void availableWithTheModule() {
        Availability a = new VectorBackend().availability();
        assertTrue(a.isAvailable(), a.toString());
        assertTrue(a.reason().contains("Vector API"), a.reason());
    }

    @Test
    void decisionWithoutTheModuleNamesTheFlag() {
        Availability a = VectorBackend.availability(false, 2);
        assertFalse(a.isAvailable());
        assertTrue(a.reason().contains("--add-modules jdk.incubator.vector"), a.reason());
        assertTrue(a.remedy().orElse("").contains("--add-modules jdk.incubator.vector"),
                "a remedy, so selection tells the user once when it picks a slower backend: " + a.remedy());
    }

    @Test
    void registeredAsAService() {
        assertTrue(ServiceLoader.load(dev.starling.api.SparseAttention.class).stream()
                .anyMatch(p -> p.type() == VectorBackend.class));
    }

    /** A JVM started without the module loads the provider, reports the flag and refuses plans. */
    @Test
    void childJvmWithoutTheModuleReportsTheFlag() throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(List.of(java, "-cp", System.getProperty("java.class.path"),
                WithoutModuleMain.class.getName())).redirectErrorStream(true);
        pb.environment().remove("JDK_JAVA_OPTIONS");
        Process p = pb.start();
        String printed = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child JVM did not finish: " + printed);
        assertEquals(0, p.exitValue(), printed);
        assertTrue(printed.contains("vector 70 unavailable: "), printed);
        assertTrue(printed.contains("--add-modules jdk.incubator.vector"), printed);
        assertTrue(printed.contains("plan refused: vector backend is unavailable"), printed);
    }
}
