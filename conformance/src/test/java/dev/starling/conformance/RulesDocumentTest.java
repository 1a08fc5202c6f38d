package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Feature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code RULES.md} and {@link Rule} say the same thing: one heading per rule, with the rule's test
 * name and exactly the {@link Feature} constants it needs, so the document a backend author reads
 * cannot drift from what the kit checks.
 */
class RulesDocumentTest {

    private static final Pattern HEADING =
            Pattern.compile("^### (\\d+)\\. `([A-Za-z0-9_]+)`(?: \\(needs: (.+)\\))?\\s*$", Pattern.MULTILINE);
    private static final Pattern NAME = Pattern.compile("`([A-Z_]+)`");

    @Test
    void everyRuleHasOneHeadingWithItsTestNameAndItsFeatures() throws IOException {
        String text = Files.readString(Path.of("RULES.md"));
        Map<Integer, String[]> headings = new HashMap<>();
        Matcher m = HEADING.matcher(text);
        while (m.find()) {
            int number = Integer.parseInt(m.group(1));
            String[] previous = headings.put(number, new String[] {m.group(2), m.group(3)});
            assertTrue(previous == null, "RULES.md has two headings for rule " + number);
        }
        assertEquals(Rule.values().length, headings.size(), "RULES.md headings vs Rule constants");
        for (Rule rule : Rule.values()) {
            String[] h = headings.get(rule.number());
            assertTrue(h != null, "RULES.md has no heading for rule " + rule.number());
            assertEquals(rule.testName(), h[0], "rule " + rule.number() + " test name");
            Set<Feature> documented = EnumSet.noneOf(Feature.class);
            if (h[1] != null) {
                Matcher n = NAME.matcher(h[1]);
                while (n.find()) {
                    String name = n.group(1);
                    assertTrue(Arrays.stream(Feature.values()).anyMatch(f -> f.name().equals(name)),
                            "rule " + rule.number() + " needs `" + name + "`, which is not a Feature constant");
                    documented.add(Feature.valueOf(name));
                }
            }
            assertEquals(rule.needs(), documented, "rule " + rule.number() + " needs");
        }
    }
}
