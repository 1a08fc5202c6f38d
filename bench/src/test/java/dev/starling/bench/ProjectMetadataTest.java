package dev.starling.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Keeps the project legally usable: a {@code LICENSE} at the root, and every published pom carries the
 * licence, developer and source-repository metadata (the modules inherit it from the parent; the BOM,
 * which has no parent, carries the same text itself).
 */
class ProjectMetadataTest {

    private static final Path ROOT = Path.of("..");
    private static final List<String> METADATA = List.of("licenses", "developers", "scm", "url");

    @Test
    void licenceFileIsApache2() throws IOException {
        String licence = Files.readString(ROOT.resolve("LICENSE"));
        assertTrue(licence.contains("Apache License") && licence.contains("Version 2.0, January 2004"),
                "LICENSE is the Apache License 2.0 text");
    }

    @Test
    void parentAndBomCarryTheSameMetadata() throws IOException {
        String parent = Files.readString(ROOT.resolve("pom.xml"));
        String bom = Files.readString(ROOT.resolve("bom/pom.xml"));
        for (String element : METADATA) {
            String expected = element(parent, element);
            assertTrue(!expected.isBlank(), "the parent pom has <" + element + ">");
            assertEquals(expected, element(bom, element), "bom/pom.xml's <" + element + "> is the parent's");
        }
        assertTrue(element(parent, "licenses").contains("<name>Apache-2.0</name>"), "the pom names the LICENSE's licence");
    }

    @Test
    void everyModuleInheritsTheMetadata() throws IOException {
        String parent = Files.readString(ROOT.resolve("pom.xml"));
        Matcher module = Pattern.compile("<module>([^<]+)</module>").matcher(parent);
        int modules = 0;
        while (module.find()) {
            modules++;
            String pom = Files.readString(ROOT.resolve(module.group(1)).resolve("pom.xml"));
            if (module.group(1).equals("bom")) {
                continue;   // checked above
            }
            assertTrue(pom.contains("<artifactId>starling-parent</artifactId>"),
                    module.group(1) + "/pom.xml has starling-parent as its parent, so it inherits the licence");
            for (String element : List.of("licenses", "developers", "scm")) {
                assertTrue(!pom.contains("<" + element), module.group(1) + "/pom.xml does not override <" + element + ">");
            }
        }
        assertTrue(modules >= 9, "modules found: " + modules);
    }

    /** The first top-level-looking {@code <name ...>...</name>} element of a pom, whitespace collapsed. */
    private static String element(String pom, String name) {
        Matcher m = Pattern.compile("(?s)\\n  <" + name + "[ >].*?</" + name + ">").matcher(pom);
        return m.find() ? m.group().replaceAll("\\s+", " ").strip() : "";
    }
}
