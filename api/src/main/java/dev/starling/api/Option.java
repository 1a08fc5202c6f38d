package dev.starling.api;

import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;

/**
 * One typed setting of a backend's plans (threads, kernel family, split threshold, pipeline stages,
 * device, an experimental path), given per plan through {@link PlanOptions} and
 * {@link SparseAttention#plan(AttentionProblem, dev.starling.api.pattern.BlockLayout, PlanOptions)}.
 *
 * <p>An option has a short name (unique within its backend, used on the command line as
 * {@code name=value}), a type, a fallback used when nothing sets it, and optionally a system property
 * whose value, when set, replaces the fallback as the default. The property is read only by
 * {@link PlanOptions#fromSystemProperties}, the one place Starling reads configuration from the
 * environment; backends never read properties themselves. Every value, whether parsed from text or
 * given as a Java value, passes the option's check, so a bad value is refused with a message that
 * names the option (and the property, when it came from one).
 *
 * <p>Instances are immutable; a backend declares its options as constants and lists them in
 * {@link SparseAttention#options()}.
 *
 * @param <T> the value type
 */
public final class Option<T> {
    private final String name;
    private final Class<T> type;
    private final String property;
    private final Supplier<T> fallback;
    private final Function<String, T> parser;
    private final UnaryOperator<T> check;
    private final String description;

    private Option(String name, Class<T> type, String property, Supplier<T> fallback, Function<String, T> parser,
                   UnaryOperator<T> check, String description) {
        if (name == null || !name.matches("[a-z][a-z0-9-]*")) {
            throw new IllegalArgumentException("option name must be lowercase letters, digits and '-', got " + name);
        }
        this.name = name;
        this.type = Objects.requireNonNull(type, "type");
        this.property = property;
        this.fallback = Objects.requireNonNull(fallback, "fallback");
        this.parser = Objects.requireNonNull(parser, "parser");
        this.check = Objects.requireNonNull(check, "check");
        this.description = Objects.requireNonNull(description, "description");
    }

    /**
     * A general option.
     *
     * @param name short name, e.g. {@code "threads"}
     * @param type the value class
     * @param property the system property that sets the default, or {@code null} for none
     * @param fallback the value when neither the plan nor the property sets one (may compute it, e.g.
     *                 from the processor count; it must satisfy {@code check})
     * @param parser text to value; throws {@link IllegalArgumentException} saying what is accepted
     * @param check returns the value when it is acceptable, else throws {@link IllegalArgumentException}
     * @param description one line for {@code --help} and {@code starling backends}
     * @param <T> the value type
     * @return the option
     */
    public static <T> Option<T> of(String name, Class<T> type, String property, Supplier<T> fallback,
                                   Function<String, T> parser, UnaryOperator<T> check, String description) {
        return new Option<>(name, type, property, fallback, parser, check, description);
    }

    /**
     * A whole number {@code >= 1} (threads, key blocks per unit), written in ASCII digits.
     *
     * @return the option
     */
    public static Option<Integer> positiveInt(String name, String property, Supplier<Integer> fallback,
                                              String description) {
        return of(name, Integer.class, property, fallback, Option::parsePositive, v -> {
            if (v == null || v < 1) {
                throw new IllegalArgumentException("must be a whole number >= 1, got " + v);
            }
            return v;
        }, description);
    }

    /**
     * A switch: {@code true} or {@code false} (any case), nothing else.
     *
     * @return the option, {@code false} unless set
     */
    public static Option<Boolean> flag(String name, String property, String description) {
        return of(name, Boolean.class, property, () -> Boolean.FALSE, text -> switch (text.toLowerCase(Locale.ROOT)) {
            case "true" -> Boolean.TRUE;
            case "false" -> Boolean.FALSE;
            default -> throw new IllegalArgumentException("must be true or false, got '" + text + "'");
        }, Objects::requireNonNull, description);
    }

    private static Integer parsePositive(String text) {
        if (text.isEmpty() || text.length() > 9 || !text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException("must be a whole number >= 1 (at most 9 digits), got '" + text + "'");
        }
        int v = Integer.parseInt(text);
        if (v < 1) {
            throw new IllegalArgumentException("must be a whole number >= 1, got " + v);
        }
        return v;
    }

    /** @return the short name, e.g. {@code "threads"} */
    public String name() { return name; }

    /** @return the value class */
    public Class<T> type() { return type; }

    /** @return the system property that sets the default, or {@code null} */
    public String property() { return property; }

    /** @return one line saying what the option does */
    public String description() { return description; }

    /** @return the value when nothing sets the option (neither a plan nor the property) */
    public T fallback() {
        return checked(fallback.get());
    }

    /**
     * Parses a value written as text (blanks around it ignored).
     *
     * @param text the text, e.g. {@code "4"}
     * @return the checked value
     * @throws IllegalArgumentException naming the option and the text
     */
    public T parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("option " + name + ": a value is required");
        }
        try {
            return check.apply(parser.apply(text.strip()));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("option " + name + " " + e.getMessage(), e);
        }
    }

    /**
     * Checks a value given from Java.
     *
     * @param value the value
     * @return {@code value}
     * @throws IllegalArgumentException naming the option when the value is not acceptable
     */
    public T checked(T value) {
        if (value == null || !type.isInstance(value)) {
            throw new IllegalArgumentException("option " + name + " takes a " + type.getSimpleName() + ", got "
                    + (value == null ? "null" : value.getClass().getSimpleName()));
        }
        try {
            return check.apply(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("option " + name + " " + e.getMessage(), e);
        }
    }

    @Override
    public String toString() {
        return name + (property != null ? " (-D" + property + ")" : "");
    }
}
