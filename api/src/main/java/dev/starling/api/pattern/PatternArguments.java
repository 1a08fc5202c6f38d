package dev.starling.api.pattern;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The arguments of one {@code name(...)} in pattern text: named values ({@code block=64},
 * {@code global=[0, -1]}, {@code file=path.npy}) and positional nested patterns
 * ({@code union(P, Q)}). Errors thrown from here carry the argument's position.
 */
public final class PatternArguments {
    private final String text;
    private final String form;
    private final int position;
    private final Map<String, Named> named = new LinkedHashMap<>();
    private final List<PatternSpec> patterns = new ArrayList<>();
    private final List<Integer> patternPositions = new ArrayList<>();
    private boolean patternsRead;

    record Named(Object value, int position) {
    }

    PatternArguments(String text, String form, int position) {
        this.text = text;
        this.form = form;
        this.position = position;
    }

    void putNamed(String name, Object value, int at) {
        if (named.containsKey(name)) {
            throw error(at, "argument '" + name + "' is given twice");
        }
        named.put(name, new Named(value, at));
    }

    void addPattern(PatternSpec spec, int at) {
        patterns.add(spec);
        patternPositions.add(at);
    }

    PatternSyntaxException error(int at, String problem) {
        return new PatternSyntaxException(text, at, problem, form);
    }

    private Named take(String name) {
        return named.remove(name);
    }

    /**
     * An integer argument.
     *
     * @param name the argument name
     * @param defaultValue used when absent
     * @return the value
     */
    public int intValue(String name, int defaultValue) {
        long v = longValue(name, defaultValue);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw error(position, "argument '" + name + "' = " + v + " does not fit an int");
        }
        return (int) v;
    }

    /**
     * A 64-bit integer argument (a seed).
     *
     * @param name the argument name
     * @param defaultValue used when absent
     * @return the value
     */
    public long longValue(String name, long defaultValue) {
        Named n = take(name);
        if (n == null) {
            return defaultValue;
        }
        if (!(n.value() instanceof Long l)) {
            throw error(n.position(), "argument '" + name + "' must be an integer");
        }
        return l;
    }

    /**
     * A list of integers, written {@code [a, b, ...]} or as one integer.
     *
     * @param name the argument name
     * @param defaultValue used when absent. Not modified.
     * @return the values
     */
    public int[] intList(String name, int[] defaultValue) {
        Named n = take(name);
        if (n == null) {
            return defaultValue.clone();
        }
        if (n.value() instanceof Long l) {
            return new int[] {Math.toIntExact(l)};
        }
        if (n.value() instanceof long[] list) {
            int[] out = new int[list.length];
            for (int i = 0; i < list.length; i++) {
                out[i] = Math.toIntExact(list[i]);
            }
            return out;
        }
        throw error(n.position(), "argument '" + name + "' must be an integer list like [0, -1]");
    }

    /**
     * A required text argument such as a file path.
     *
     * @param name the argument name
     * @return the value
     */
    public String string(String name) {
        Named n = take(name);
        if (n == null) {
            throw error(position, "missing argument '" + name + "'");
        }
        return String.valueOf(n.value() instanceof long[] ? "" : n.value());
    }

    /**
     * A word argument that must be one of a fixed set, such as {@code mode=eval}.
     *
     * @param name the argument name
     * @param defaultValue used when absent
     * @param allowed the accepted words. Not modified.
     * @return the value, one of {@code allowed}
     */
    public String choice(String name, String defaultValue, String... allowed) {
        Named n = take(name);
        if (n == null) {
            return defaultValue;
        }
        for (String a : allowed) {
            if (a.equals(n.value())) {
                return a;
            }
        }
        throw error(n.position(), "argument '" + name + "' must be one of " + String.join(", ", allowed));
    }

    /**
     * The positional nested patterns.
     *
     * @param min fewest allowed
     * @param max most allowed
     * @return the patterns in order
     */
    public List<PatternSpec> patterns(int min, int max) {
        patternsRead = true;
        if (patterns.size() < min || patterns.size() > max) {
            String want = min == max ? String.valueOf(min) : max == Integer.MAX_VALUE ? "at least " + min : min + " to " + max;
            throw error(position, "expected " + want + " nested pattern(s), found " + patterns.size());
        }
        return List.copyOf(patterns);
    }

    void checkAllUsed() {
        if (!named.isEmpty()) {
            Map.Entry<String, Named> e = named.entrySet().iterator().next();
            throw error(e.getValue().position(), "unknown argument '" + e.getKey() + "'");
        }
        if (!patternsRead && !patterns.isEmpty()) {
            throw error(patternPositions.get(0), "this pattern takes no nested pattern");
        }
    }
}
