package dev.starling.bench.modules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The modules on the module path: a tiny application module that requires only {@code dev.starling.api}
 * finds the modular backends (reference, native) through {@code ServiceLoader} ({@code provides}), runs attention, and cannot reach
 * what the api does not export to it (file formats, provider plumbing) nor any backend's package.
 */
class ModulePathTest {
    private static final String MAIN = """
            package probe;

            import dev.starling.api.*;
            import dev.starling.api.pattern.Patterns;
            import dev.starling.api.selection.BackendSelector;

            public class Main {
                public static void main(String[] args) throws Exception {
                    BackendSelector selector = BackendSelector.discover();
                    System.out.println("found " + selector.reports().stream().map(r -> r.name()).sorted().toList());
                    SparseAttention reference = selector.byName("reference");
                    System.out.println("reference module " + reference.getClass().getModule().getName()
                            + " exports its package: " + reference.getClass().getModule().isExported(
                                    reference.getClass().getPackageName()));
                    Module api = SparseAttention.class.getModule();
                    System.out.println("api exports npy to me: " + api.isExported("dev.starling.api.npy", Main.class.getModule())
                            + ", io: " + api.isExported("dev.starling.api.io", Main.class.getModule())
                            + ", plan: " + api.isExported("dev.starling.api.plan", Main.class.getModule()));
                    AttentionProblem p = AttentionProblem.builder().heads(1).length(32).headDim(4).build();
                    float[] ones = new float[32 * 4];
                    java.util.Arrays.fill(ones, 1f);
                    Tensor q = Tensor.of(TensorLayout.BHSD, ones, 1, 1, 32, 4);
                    Tensor o = Tensor.zeros(TensorLayout.BHSD, 1, 1, 32, 4);
                    try (AttentionPlan plan = reference.plan(p, Patterns.parse("dense(block=16)").layout(32, 32, 1),
                            PlanOptions.of(reference, "threads=1"))) {
                        plan.forward(q, q, q, o);
                    }
                    System.out.println("out " + o.data()[0] + " " + o.data()[127]);
                }
            }
            """;

    @Test
    void anApplicationModuleFindsTheBackendsAndOnlyTheExportedApi(@TempDir Path dir) throws Exception {
        Path root = Path.of("..").toAbsolutePath().normalize();
        List<String> modulePath = new ArrayList<>();
        for (String m : new String[] {"api", "backend-reference", "backend-native"}) {
            Path classes = root.resolve(m).resolve("target/classes");
            assertTrue(Files.isRegularFile(classes.resolve("module-info.class")), classes + " has no module-info.class");
            modulePath.add(classes.toString());
        }
        String mp = String.join(java.io.File.pathSeparator, modulePath);

        Path src = dir.resolve("src/probe");
        Files.createDirectories(src.resolve("probe"));
        Files.writeString(src.resolve("module-info.java"), "module probe { requires dev.starling.api; }");
        Files.writeString(src.resolve("probe/Main.java"), MAIN);
        Path out = dir.resolve("out");
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        int rc = javac.run(null, null, null, "--release", "17", "--module-path", mp, "-d", out.toString(),
                src.resolve("module-info.java").toString(), src.resolve("probe/Main.java").toString());
        assertEquals(0, rc, "the probe module compiles against the api module");

        Path launcher = Path.of(System.getProperty("java.home"), "bin", "java");
        Process proc = new ProcessBuilder(launcher.toString(), "--add-modules", "ALL-MODULE-PATH",
                "--module-path", mp + java.io.File.pathSeparator + out, "-m", "probe/probe.Main")
                .redirectErrorStream(true).start();
        String text = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(proc.waitFor(60, TimeUnit.SECONDS), text);
        assertEquals(0, proc.exitValue(), text);
        assertTrue(text.contains("found [native, reference]"), text);
        assertTrue(text.contains("reference module dev.starling.backend.reference exports its package: false"), text);
        assertTrue(text.contains("api exports npy to me: false, io: false, plan: true"), text);
        assertTrue(text.contains("out 1.0 1.0"), text);
    }

}
