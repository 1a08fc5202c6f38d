package dev.starling.api.pattern;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
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
 * {@link ServiceLoader}. Every argument is optional unless stated; defaults are in each
 * provider's {@link PatternProvider#form()}.
 */
public final class Patterns {

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
        Parser p = new Parser(text, providers());
        PatternSpec spec = p.spec();
        p.skipSpaces();
        if (p.pos < text.length()) {
            throw new PatternSyntaxException(text, p.pos, "unexpected '" + text.charAt(p.pos) + "' after the pattern", null);
        }
        return spec;
    }

    /**
     * Every pattern name that parses, built-ins first.
     *
     * @return name to provider, in resolution order
     */
    public static Map<String, PatternProvider> providers() {
        Map<String, PatternProvider> map = new LinkedHashMap<>();
        for (PatternProvider p : BuiltinPatterns.all()) {
            map.put(p.name(), p);
        }
        ClassLoader cl = Thread.currentThread().getContextClassLoader();
        Iterator<PatternProvider> it = ServiceLoader.load(PatternProvider.class, cl != null ? cl : Patterns.class.getClassLoader())
                .iterator();
        while (true) {
            try {
                if (!it.hasNext()) {
                    break;
                }
                PatternProvider p = it.next();
                map.putIfAbsent(p.name(), p);
            } catch (ServiceConfigurationError e) {
                // One broken pattern jar must not hide the others; it simply contributes no name.
                continue;
            }
        }
        return map;
    }

    private static final class Parser {
        private final String text;
        private final Map<String, PatternProvider> providers;
        private int pos;

        Parser(String text, Map<String, PatternProvider> providers) {
            this.text = text;
            this.providers = providers;
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
            int start = pos;
            String name = identifier();
            PatternProvider provider = providers.get(name.toLowerCase());
            if (provider == null) {
                pos = start;
                throw error("unknown pattern '" + name + "'; known patterns: " + String.join(", ", providers.keySet()), null);
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
            if (c == '-' || c == '+' || Character.isDigit(c)) {
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
            while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
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
}
