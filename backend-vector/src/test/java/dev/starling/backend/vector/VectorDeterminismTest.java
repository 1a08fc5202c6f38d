package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Bit-identical results, forward and backward, whether the kernels run interpreted or compiled by C2: it uses only
 * operations Java defines exactly (fused multiply-add, add, multiply, compare, blend, bit
 * reinterpretation). The Vector API's lane-wise {@code EXP} is not one of them: its intrinsic and
 * its Java fallback differ in the last bit, so a plan's cold first call and its later hot calls
 * would differ (conformance rule 11 then fails depending on what ran before it).
 */
class VectorDeterminismTest {

    @Test
    void interpretedAndCompiledAgreeBitForBit() throws IOException, InterruptedException {
        String hot = DeterminismMain.run(2000);
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(List.of(java, "-Xint", "--add-modules", VectorBackend.MODULE, "-cp",
                System.getProperty("java.class.path"), DeterminismMain.class.getName()));
        pb.environment().remove("JDK_JAVA_OPTIONS");
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process p = pb.start();
        String cold = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "interpreted JVM did not finish");
        assertEquals(0, p.exitValue(), cold);
        String[] a = cold.split(" ");
        String[] b = hot.split(" ");
        assertEquals(b.length, a.length, "value count");
        for (int x = 0; x < a.length; x++) {
            assertEquals(a[x], b[x], "value " + x + ": interpreted bits " + a[x] + " vs compiled " + b[x]);
        }
    }
}
