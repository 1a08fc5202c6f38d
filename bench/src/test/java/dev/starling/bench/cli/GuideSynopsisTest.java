package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The guide's synopsis (docs/guide/cli.md, section "## Commands") cannot fall behind the tool: every command and
 * every option that {@code --help} prints, read from picocli's model, appears under its command,
 * and the synopsis names no option the tool lacks (issue 13, item 8).
 */
class GuideSynopsisTest {
    private static String section;
    private static Map<String, String> entries;

    @BeforeAll
    static void readSynopsis() throws Exception {
        String readme = Files.readString(Path.of("..", "docs", "guide", "cli.md"));
        int start = readme.indexOf("\n## Commands\n");
        assertTrue(start >= 0, "docs/guide/cli.md has a '## Commands' section");
        Matcher next = Pattern.compile("\n#{2,3} ").matcher(readme);
        section = readme.substring(start + 1, next.find(start + 5) ? next.start() : readme.length());
        entries = new LinkedHashMap<>();
        String current = null;
        for (String line : section.lines().toList()) {
            if (line.startsWith("    ./starling")) {
                String[] words = line.strip().split("\\s+");
                current = words.length > 1 && !words[1].startsWith("#") && !words[1].startsWith("--")
                        ? words[1].replaceAll("[\\[\\]]", "") : "";
                // Comments after '#' are prose, not synopsis.
                entries.put(current, line.replaceAll("\\s#\\s.*$", ""));
            } else if (current != null && line.startsWith("     ") && !line.isBlank()) {
                entries.merge(current, " " + line.replaceAll("\\s#\\s.*$", ""), String::concat);
            } else if (!line.startsWith("    ")) {
                current = null;
            }
        }
        assertFalse(entries.isEmpty(), "the section has a block of ./starling lines:\n" + section);
    }

    /** An option as the synopsis writes it: {@code --[no-]machine-rate} for a negatable one. */
    private static String written(OptionSpec o) {
        String name = o.longestName();
        return o.negatable() ? "--[no-]" + name.substring(2) : name;
    }

    /** Options every command has: the standard help options and the inherited {@code --verbose}. */
    private static boolean common(OptionSpec o) {
        return o.usageHelp() || o.versionHelp() || o.longestName().equals("--verbose");
    }

    private static boolean containsWord(String text, String word) {
        return Pattern.compile("(?<![\\w-])" + Pattern.quote(word) + "(?![\\w-])").matcher(text).find();
    }

    @Test
    void everyCommandAndEveryOptionTheHelpPrintsIsInTheSynopsis() {
        CommandLine tool = StarlingCli.commandLine();
        List<String> missing = new ArrayList<>();
        for (OptionSpec o : tool.getCommandSpec().options()) {
            for (String name : o.names()) {
                if (!o.hidden() && !containsWord(section, name)) {
                    missing.add("starling " + name);
                }
            }
        }
        for (Map.Entry<String, CommandLine> sub : tool.getSubcommands().entrySet()) {
            CommandSpec spec = sub.getValue().getCommandSpec();
            if (spec.usageMessage().hidden()) {
                continue;
            }
            String entry = entries.get(sub.getKey());
            if (entry == null) {
                missing.add("command " + sub.getKey());
                continue;
            }
            for (OptionSpec o : spec.options()) {
                if (o.hidden()) {
                    continue;
                }
                if (common(o)) {
                    for (String name : o.names()) {
                        if (!containsWord(section, name)) {
                            missing.add(sub.getKey() + " " + name + " (in the sentence on options every command takes)");
                        }
                    }
                } else if (!containsWord(entry, written(o))) {
                    missing.add(sub.getKey() + " " + written(o));
                }
            }
            for (CommandLine.Model.PositionalParamSpec p : spec.positionalParameters()) {
                if (!p.hidden() && !entry.contains(p.paramLabel())) {
                    missing.add(sub.getKey() + " " + p.paramLabel());
                }
            }
        }
        assertEquals(List.of(), missing, "docs/guide/cli.md's synopsis lacks these; the synopsis:\n" + section);
    }

    @Test
    void theSynopsisNamesNoOptionTheToolLacks() {
        CommandLine tool = StarlingCli.commandLine();
        List<String> extra = new ArrayList<>();
        for (Map.Entry<String, String> e : entries.entrySet()) {
            CommandLine sub = e.getKey().isEmpty() ? tool : tool.getSubcommands().get(e.getKey());
            assertNotNull(sub, "the synopsis has a command the tool lacks: " + e.getKey());
            Set<String> known = new TreeSet<>();
            for (OptionSpec o : sub.getCommandSpec().options()) {
                known.addAll(List.of(o.names()));
                known.add(written(o));
            }
            Matcher m = Pattern.compile("--(?:\\[no-\\])?[\\w-]+").matcher(e.getValue());
            while (m.find()) {
                if (!known.contains(m.group())) {
                    extra.add(e.getKey() + " " + m.group());
                }
            }
        }
        assertEquals(List.of(), extra, "docs/guide/cli.md's synopsis names options the tool does not have");
    }

    /** {@code starling --help} lists each command with the first line of its description: a whole sentence. */
    @Test
    void theHelpSummaryOfEveryCommandIsAWholeSentence() {
        CommandLine tool = StarlingCli.commandLine();
        for (Map.Entry<String, CommandLine> sub : tool.getSubcommands().entrySet()) {
            String[] description = sub.getValue().getCommandSpec().usageMessage().description();
            assertTrue(description.length > 0, sub.getKey());
            String summary = description[0].strip();
            assertTrue(summary.endsWith("."), sub.getKey() + "'s summary is cut: " + summary);
        }
        java.io.StringWriter help = new java.io.StringWriter();
        tool.setOut(new java.io.PrintWriter(help));
        tool.execute("--help");
        assertTrue(help.toString().contains("length by length."), help.toString());
    }
}
