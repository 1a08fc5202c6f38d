import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Writes the consumer projects of module {@code it-consumer} from the documentation: every fenced
 * code block that follows a line {@code <!-- it-consumer: PROJECT/PATH -->} in {@code README.md} or
 * a page of {@code docs/guide} becomes the file {@code PROJECT/PATH}, verbatim (the fence's own
 * indentation removed). A block written to a {@code pom.xml} is what the docs tell a user to put
 * inside their pom's {@code <project>} after its coordinates, so it is wrapped in exactly that: a
 * {@code <project>} with {@code com.example:PROJECT:1.0}. The rest of each project (its tests, which
 * check what the documented programs print) comes from {@code src/it}; one file has one source, so
 * a documented file that {@code src/it} also holds is an error.
 *
 * <p>Run by the build with the single-file source launcher (Java 17):
 * {@code java DocBlocks.java ROOT STATIC OUT VERSION}: {@code ROOT} the repository, {@code STATIC}
 * the hand-written parts ({@code src/it}), {@code OUT} the projects folder the invoker builds
 * (emptied first), {@code VERSION} the Starling version the docs must name for the BOM. Exits 1
 * with one line per problem (a marker without a block, an unterminated block, a path outside its
 * project, a version the build does not make).
 */
public final class DocBlocks {
    private static final Pattern MARKER = Pattern.compile("^\\s*<!-- it-consumer: (\\S+) -->\\s*$");
    private static final Pattern FENCE = Pattern.compile("^(\\s*)```(\\w*)\\s*$");
    private static final Pattern BOM_VERSION =
            Pattern.compile("<artifactId>starling-bom</artifactId>\\s*<version>([^<]*)</version>");

    private DocBlocks() {
    }

    /** One documented file: where it came from and its text. */
    private record Block(String source, int line, String text) {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 4) {
            System.err.println("usage: java DocBlocks.java ROOT STATIC OUT VERSION");
            System.exit(2);
        }
        Path root = Path.of(args[0]);
        Path fixed = Path.of(args[1]);
        Path out = Path.of(args[2]);
        String version = args[3];
        List<String> problems = new ArrayList<>();
        Map<String, Block> blocks = new LinkedHashMap<>();
        List<Path> docs = new ArrayList<>();
        docs.add(root.resolve("README.md"));
        try (Stream<Path> guide = Files.list(root.resolve("docs/guide"))) {
            guide.filter(p -> p.toString().endsWith(".md")).sorted().forEach(docs::add);
        }
        for (Path doc : docs) {
            read(root.relativize(doc).toString(), Files.readAllLines(doc, StandardCharsets.UTF_8), blocks, problems);
        }
        if (blocks.isEmpty()) {
            problems.add("no <!-- it-consumer: PATH --> block in README.md or docs/guide");
        }
        for (Map.Entry<String, Block> e : blocks.entrySet()) {
            if (Files.exists(fixed.resolve(e.getKey()))) {
                problems.add(e.getValue().source + ":" + e.getValue().line + ": " + e.getKey()
                        + " is also in " + fixed + "; a file has one source");
            }
            if (e.getKey().endsWith("pom.xml")) {
                Matcher bom = BOM_VERSION.matcher(e.getValue().text);
                if (!bom.find() || !bom.group(1).equals(version)) {
                    problems.add(e.getValue().source + ":" + e.getValue().line + ": the pom block imports starling-bom "
                            + (bom.find(0) ? "version " + bom.group(1) : "without a version") + ", but this build makes "
                            + version);
                }
            }
        }
        if (!problems.isEmpty()) {
            problems.forEach(p -> System.err.println("it-consumer: " + p));
            System.exit(1);
        }
        delete(out);
        copy(fixed, out);
        for (Map.Entry<String, Block> e : blocks.entrySet()) {
            Path target = out.resolve(e.getKey());
            Files.createDirectories(target.getParent());
            String text = e.getValue().text;
            if (e.getKey().endsWith("pom.xml")) {
                text = wrapPom(Path.of(e.getKey()).getName(0).toString(), text);
            }
            Files.writeString(target, text, StandardCharsets.UTF_8);
            System.out.println("it-consumer: " + e.getKey() + " from " + e.getValue().source + ":" + e.getValue().line);
        }
    }

    /** Collects the marked blocks of one document. */
    private static void read(String source, List<String> lines, Map<String, Block> blocks, List<String> problems) {
        for (int i = 0; i < lines.size(); i++) {
            Matcher marker = MARKER.matcher(lines.get(i));
            if (!marker.matches()) {
                continue;
            }
            String where = source + ":" + (i + 1);
            Path path = Path.of(marker.group(1)).normalize();
            if (path.isAbsolute() || path.startsWith("..") || path.getNameCount() < 2) {
                problems.add(where + ": " + marker.group(1) + " is not PROJECT/PATH inside the consumer projects");
                continue;
            }
            Matcher open = i + 1 < lines.size() ? FENCE.matcher(lines.get(i + 1)) : null;
            if (open == null || !open.matches()) {
                problems.add(where + ": the marker is not followed by a ``` block on the next line");
                continue;
            }
            String indent = open.group(1);
            StringBuilder text = new StringBuilder();
            int j = i + 2;
            while (j < lines.size() && !lines.get(j).equals(indent + "```")) {
                String line = lines.get(j);
                text.append(line.startsWith(indent) ? line.substring(indent.length()) : line.strip()).append('\n');
                j++;
            }
            if (j == lines.size()) {
                problems.add(where + ": the ``` block is never closed");
                continue;
            }
            Block previous = blocks.putIfAbsent(path.toString(), new Block(source, i + 1, text.toString()));
            if (previous != null) {
                problems.add(where + ": " + path + " is already written by " + previous.source + ":" + previous.line);
            }
            i = j;
        }
    }

    /** The pom a user gets by pasting the block into a project with coordinates com.example:NAME:1.0. */
    private static String wrapPom(String name, String block) {
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                + "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"\n"
                + "         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
                + "         xsi:schemaLocation=\"http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd\">\n"
                + "  <!-- Generated by it-consumer's DocBlocks from the documentation's block; edit the docs, not this. -->\n"
                + "  <modelVersion>4.0.0</modelVersion>\n"
                + "  <groupId>com.example</groupId>\n"
                + "  <artifactId>" + name + "</artifactId>\n"
                + "  <version>1.0</version>\n\n"
                + block
                + "</project>\n";
    }

    private static void delete(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static void copy(Path from, Path to) throws IOException {
        try (Stream<Path> all = Files.walk(from)) {
            all.forEach(p -> {
                try {
                    Path target = to.resolve(from.relativize(p).toString());
                    if (Files.isDirectory(p)) {
                        Files.createDirectories(target);
                    } else {
                        Files.copy(p, target);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }
}
