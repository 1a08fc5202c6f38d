package dev.starling.api.pattern;

import dev.starling.api.spi.FoundProvider;
import dev.starling.api.spi.NamedProviders;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * The pattern text syntax: parsing and name resolution.
 *
 * <pre>
 * spec  := name [ "(" [ item { "," item } ] ")" ]
 * item  := key "=" value | spec
 * value := integer | "[" [ integer { "," integer } ] "]" | 'quoted' | "quoted" | bare-word
 * </pre>
 *
 * Names are resolved among the built-ins first, then among {@link PatternProvider}s found by
 * {@link ServiceLoader} (through {@link NamedProviders}: a broken provider never hides the others,
 * and a name that is already taken keeps its first provider). Every argument is optional unless stated; defaults are in each
 * provider's {@link PatternProvider#form()}.
 */
public final class Patterns {

    private static final NamedProviders<PatternProvider> PROVIDERS =
            NamedProviders.of(PatternProvider.class, "pattern", PatternProvider::name, BuiltinPatterns.all());

    /** Deepest nesting of patterns inside patterns ({@code causal(union(...))}) the parser takes. */
    public static final int MAX_DEPTH = 64;

    private Patterns() {
    }

    /**
     * Parses pattern text.
     *
     * @param text e.g. {@code "causal(bigbird(block=64, random=2))"}
     * @return the pattern
     * @throws PatternSyntaxException with the position and the expected form on bad text
     */
    public static PatternSpec parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("pattern text must not be null");
        }
        Parser p = new Parser(text, PROVIDERS.find());
        PatternSpec spec = p.spec();
        p.skipSpaces();
        if (p.pos < text.length()) {
            throw new PatternSyntaxException(text, p.pos, "unexpected '" + text.charAt(p.pos) + "' after the pattern", null);
        }
        return spec;
    }

    /**
     * Every pattern name that parses, built-ins first. A provider on the class path that cannot
     * be used (it fails to load, has no name, or takes a name already taken, built-in or not) adds
     * no name; it is logged (see {@link NamedProviders}) and listed when a name is unknown.
     *
     * @return name to provider, in resolution order
     */
    public static Map<String, PatternProvider> providers() {
        return usable(PROVIDERS.find());
    }

    private static Map<String, PatternProvider> usable(List<FoundProvider<PatternProvider>> found) {
        Map<String, PatternProvider> map = new LinkedHashMap<>();
        for (FoundProvider<PatternProvider> f : found) {
            if (f.usable()) {
                map.put(f.name(), f.instance());
            }
        }
        return map;
    }

    private static final class Parser {
        private final String text;
        private final Map<String, PatternProvider> providers;
        private final List<FoundProvider<PatternProvider>> refused;
        private int pos;
        private int depth;

        Parser(String text, List<FoundProvider<PatternProvider>> found) {
            this.text = text;
            this.providers = usable(found);
            this.refused = found.stream().filter(f -> !f.usable()).toList();
        }

        void skipSpaces() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                pos++;
            }
        }

        private PatternSyntaxException error(String problem, String form) {
            return new PatternSyntaxException(text, pos, problem, form);
        }

        private String found() {
            return pos >= text.length() ? "end of text" : "'" + text.charAt(pos) + "'";
        }

        String identifier() {
            skipSpaces();
            int start = pos;
            while (pos < text.length() && (Character.isLetterOrDigit(text.charAt(pos)) || text.charAt(pos) == '_')) {
                pos++;
            }
            if (start == pos || !Character.isLetter(text.charAt(start))) {
                pos = start;
                throw error("expected a pattern name such as " + String.join(", ", providers.keySet()) + " but found "
                        + found(), null);
            }
            return text.substring(start, pos);
        }

        PatternSpec spec() {
            skipSpaces();
            if (depth >= MAX_DEPTH) {
                throw error("patterns nest more than " + MAX_DEPTH + " levels deep", null);
            }
            depth++;
            try {
                return specBody();
            } finally {
                depth--;
            }
        }

        private PatternSpec specBody() {
            int start = pos;
            String name = identifier();
            PatternProvider provider = providers.get(name.toLowerCase());
            if (provider == null) {
                pos = start;
                StringBuilder why = new StringBuilder("unknown pattern '" + (name.length() > 60 ? name.substring(0, 60) + "…" : name) + "'; known patterns: ")
                        .append(String.join(", ", providers.keySet()));
                for (FoundProvider<PatternProvider> f : refused) {
                    why.append("; not used: pattern provider ").append(f.origin()).append(": ").append(f.problem());
                }
                throw error(why.toString(), null);
            }
            PatternArguments args = new PatternArguments(text, provider.form(), start);
            skipSpaces();
            if (pos < text.length() && text.charAt(pos) == '(') {
                pos++;
                arguments(args, provider.form());
            }
            PatternSpec spec;
            try {
                spec = provider.create(args);
            } catch (PatternSyntaxException e) {
                throw e;
            } catch (IllegalArgumentException | ArithmeticException | java.io.UncheckedIOException e) {
                throw new PatternSyntaxException(text, start, e.getMessage(), provider.form());
            }
            args.checkAllUsed();
            return spec;
        }

        private void arguments(PatternArguments args, String form) {
            skipSpaces();
            if (pos < text.length() && text.charAt(pos) == ')') {
                pos++;
                return;
            }
            while (true) {
                skipSpaces();
                int itemStart = pos;
                String name = identifier();
                skipSpaces();
                if (pos < text.length() && text.charAt(pos) == '=') {
                    pos++;
                    args.putNamed(name.toLowerCase(), value(form), itemStart);
                } else {
                    pos = itemStart;
                    args.addPattern(spec(), itemStart);
                }
                skipSpaces();
                if (pos >= text.length()) {
                    throw error("expected ',' or ')' but found end of text", form);
                }
                char c = text.charAt(pos);
                if (c == ')') {
                    pos++;
                    return;
                }
                if (c != ',') {
                    throw error("expected ',' or ')' but found " + found(), form);
                }
                pos++;
            }
        }

        private Object value(String form) {
            skipSpaces();
            if (pos >= text.length()) {
                throw error("expected a value but found end of text", form);
            }
            char c = text.charAt(pos);
            if (c == '[') {
                pos++;
                List<Long> list = new ArrayList<>();
                skipSpaces();
                if (pos < text.length() && text.charAt(pos) == ']') {
                    pos++;
                    return new long[0];
                }
                while (true) {
                    list.add(integer(form));
                    skipSpaces();
                    if (pos < text.length() && text.charAt(pos) == ']') {
                        pos++;
                        break;
                    }
                    if (pos >= text.length() || text.charAt(pos) != ',') {
                        throw error("expected ',' or ']' in a list but found " + found(), form);
                    }
                    pos++;
                }
                return list.stream().mapToLong(Long::longValue).toArray();
            }
            if (c == '\'' || c == '"') {
                int end = text.indexOf(c, pos + 1);
                if (end < 0) {
                    throw error("unterminated quoted value", form);
                }
                String s = text.substring(pos + 1, end);
                pos = end + 1;
                return s;
            }
            if (c == '-' || c == '+' || isAsciiDigit(c)) {
                return integer(form);
            }
            int start = pos;
            while (pos < text.length() && text.charAt(pos) != ',' && text.charAt(pos) != ')') {
                pos++;
            }
            String word = text.substring(start, pos).strip();
            if (word.isEmpty()) {
                pos = start;
                throw error("expected a value but found " + found(), form);
            }
            return word;
        }

        private long integer(String form) {
            skipSpaces();
            int start = pos;
            if (pos < text.length() && (text.charAt(pos) == '-' || text.charAt(pos) == '+')) {
                pos++;
            }
            while (pos < text.length() && isAsciiDigit(text.charAt(pos))) {
                pos++;
            }
            try {
                return Long.parseLong(text.substring(start, pos));
            } catch (NumberFormatException e) {
                pos = start;
                throw error("expected an integer but found " + found(), form);
            }
        }
    }

    /** {@code 0} to {@code 9} only: {@link Character#isDigit} also takes Arabic-Indic and other digits, which {@code parseLong} reads. */
    private static boolean isAsciiDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
