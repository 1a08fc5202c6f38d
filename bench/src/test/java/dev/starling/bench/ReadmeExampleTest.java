package dev.starling.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Keeps the README honest: its Java usage example compiles against the current API and runs. */
class ReadmeExampleTest {

    @Test
    void javaExampleInReadmeCompilesAndRuns(@TempDir Path dir) throws Exception {
        Path readme = Path.of("..", "README.md");
        String text = Files.readString(readme);
        Matcher m = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL).matcher(text);
        assertTrue(m.find(), "README.md has a ```java block");
        String source = m.group(1);
        Matcher cls = Pattern.compile("public class (\\w+)").matcher(source);
        assertTrue(cls.find(), "the example declares a public class");
        Path file = dir.resolve(cls.group(1) + ".java");
        Files.writeString(file, source);

        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        int rc = javac.run(null, null, diagnostics, "-d", dir.toString(), "-cp", System.getProperty("java.class.path"),
                "--release", "17", file.toString());
        assertEquals(0, rc, "README example does not compile:\n" + diagnostics.toString(StandardCharsets.UTF_8));

        PrintStream original = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
            System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
            Method main = loader.loadClass(cls.group(1)).getMethod("main", String[].class);
            main.invoke(null, (Object) new String[0]);
        } finally {
            System.setOut(original);
        }
        List<String> lines = printed.toString(StandardCharsets.UTF_8).lines().toList();
        // Whichever backend selection picks here (nd4j on a CPU machine), the example prints one finite value.
        assertTrue(lines.stream().anyMatch(l -> l.matches("backend [a-z0-9]+: out\\[0, 0, 0, 0\\] = -?\\d+\\.\\d{4}")),
                "example output: " + lines);
    }

    /**
     * Every fenced Java or XML block of the README and the guide is a file of the consumer projects
     * that module {@code it-consumer} writes from the docs and builds (marked
     * {@code <!-- it-consumer: PROJECT/PATH -->} on the line before), so none can stop compiling or
     * running unseen; recipes that cannot be built here (DJL, {@code MemorySegment}) are indented
     * text, not fenced blocks. The README's pom section and conformance fragment were once checked
     * only one way against a hand-written consumer pom, and failed on Maven 3.8 while it passed.
     */
    @Test
    void everyFencedJavaAndXmlBlockIsBuiltByTheConsumerProjects() throws Exception {
        List<Path> docs = new java.util.ArrayList<>(List.of(Path.of("..", "README.md")));
        try (java.util.stream.Stream<Path> guide = Files.list(Path.of("..", "docs", "guide"))) {
            guide.filter(p -> p.toString().endsWith(".md")).sorted().forEach(docs::add);
        }
        Pattern fence = Pattern.compile("^\\s*```(java|xml)\\s*$");
        Pattern marker = Pattern.compile("^\\s*<!-- it-consumer: \\S+/\\S+ -->\\s*$");
        List<String> unmarked = new java.util.ArrayList<>();
        int marked = 0;
        for (Path doc : docs) {
            List<String> lines = Files.readAllLines(doc);
            boolean inside = false;
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                if (line.strip().startsWith("```")) {
                    if (!inside && fence.matcher(line).matches()) {
                        if (i > 0 && marker.matcher(lines.get(i - 1)).matches()) {
                            marked++;
                        } else {
                            unmarked.add(doc.getFileName() + ":" + (i + 1));
                        }
                    }
                    inside = !inside;
                }
            }
        }
        assertEquals(List.of(), unmarked, "fenced Java/XML blocks the consumer build does not build");
        // The README's example, both poms, the fused and off-heap examples, MyBackend and its test.
        assertTrue(marked >= 7, "marked blocks: " + marked);
    }
}
