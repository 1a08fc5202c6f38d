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
     * The consumer project that module {@code it-consumer} builds is the README's words: every
     * dependency, plugin and property of the README's Maven XML blocks ("Using it from Java" and the
     * conformance kit's third-party fragment) is in its pom (the version filtered in, comments
     * aside), and its Example.java is the README's Java block.
     */
    @Test
    void consumerProjectIsWrittenFromTheReadme() throws Exception {
        String text = Files.readString(Path.of("..", "README.md"));
        Path project = Path.of("..", "it-consumer", "src", "it", "readme-consumer");
        String pom = squeeze(Files.readString(project.resolve("pom.xml")));
        Matcher xml = Pattern.compile("```xml\n(.*?)```", Pattern.DOTALL).matcher(text);
        StringBuilder blocks = new StringBuilder();
        int elements = 0;
        while (xml.find()) {
            String block = squeeze(xml.group(1).replace("0.1.0-SNAPSHOT", "@project.version@"));
            blocks.append(block).append('\n');
            for (String part : elements(block)) {
                elements++;
                assertTrue(pom.contains(part), "it-consumer's pom lacks the README's " + part);
            }
        }
        assertTrue(elements >= 8, "the README's XML blocks name the BOM, dependencies and plugins: " + elements);
        // The other way: nothing the consumer build needs is missing from the README (a compiler release the
        // README never set made its snippets fail on Maven 3.8 while the consumer build passed).
        for (String part : elements(pom)) {
            assertTrue(blocks.indexOf(part) >= 0, "the README's XML blocks lack the consumer pom's " + part);
        }
        Matcher java = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(text);
        assertTrue(java.find());
        assertEquals(java.group(1), Files.readString(project.resolve("src/main/java/Example.java")),
                "it-consumer's Example.java is the README's example");
    }

    /** Each dependency and plugin of a squeezed pom text, and each property of its properties blocks. */
    private static List<String> elements(String squeezed) {
        List<String> parts = new java.util.ArrayList<>();
        Matcher element = Pattern.compile("<(dependency|plugin)>.*?</\\1>|<properties>(.*?)</properties>").matcher(squeezed);
        while (element.find()) {
            if (element.group(2) == null) {
                parts.add(element.group());
            } else {
                Pattern.compile("<([\\w.-]+)>[^<]*</\\1>").matcher(element.group(2)).results()
                        .map(java.util.regex.MatchResult::group).forEach(parts::add);
            }
        }
        return parts;
    }

    /** Whitespace collapsed, XML comments removed. */
    private static String squeeze(String s) {
        return s.replaceAll("(?s)<!--.*?-->", " ").replaceAll("\\s+", " ").replace("> <", "><").strip();
    }
}
