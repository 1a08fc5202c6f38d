package dev.starling.api;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The typed settings of one plan: a value for some of a backend's {@link Option}s. An option left
 * unset takes its default: the value its system property gave when {@link #fromSystemProperties}
 * read it, else the option's fallback. Two plans of one backend with different options live side by
 * side in one JVM; nothing global changes.
 *
 * <pre>{@code
 * PlanOptions opts = PlanOptions.none().with(VectorOptions.THREADS, 1);
 * try (AttentionPlan plan = backend.plan(problem, layout, opts)) { ... }
 * }</pre>
 *
 * <p>Instances are immutable; {@link #with} returns a new one.
 */
public final class PlanOptions {
    private static final PlanOptions NONE = new PlanOptions(Map.of());

    private final Map<Option<?>, Object> values;

    private PlanOptions(Map<Option<?>, Object> values) {
        this.values = values;
    }

    /** @return no option set: every option takes its default */
    public static PlanOptions none() {
        return NONE;
    }

    /**
     * The defaults the environment gives: for each option with a system property that is set (and not
     * blank), the parsed value. This is the one place Starling reads its system properties.
     *
     * @param options the options to read (a backend's {@link SparseAttention#options()})
     * @return the options the properties set
     * @throws IllegalArgumentException naming the property and its value when a value is not acceptable
     */
    public static PlanOptions fromSystemProperties(List<Option<?>> options) {
        PlanOptions result = NONE;
        for (Option<?> o : options) {
            if (o.property() == null) {
                continue;
            }
            String text = System.getProperty(o.property());
            if (text != null && !text.isBlank()) {
                result = result.withParsed(o, text, "-D" + o.property() + "=" + text + ": ");
            }
        }
        return result;
    }

    /**
     * Parses {@code name=value} settings, as the command line gives them.
     *
     * @param backend the backend's name, for messages
     * @param known the backend's options
     * @param settings e.g. {@code ["threads=2", "kernels=mma"]}
     * @return the options
     * @throws IllegalArgumentException for a setting without {@code =}, a name the backend does not take
     *         (listing those it takes), or a bad value
     */
    public static PlanOptions parse(String backend, List<Option<?>> known, List<String> settings) {
        PlanOptions result = NONE;
        for (String s : settings) {
            int eq = s.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("option '" + s + "' must be name=value");
            }
            String name = s.substring(0, eq).strip();
            Option<?> o = known.stream().filter(k -> k.name().equals(name)).findFirst().orElseThrow(
                    () -> new IllegalArgumentException(unknown(backend, name, known)));
            result = result.withParsed(o, s.substring(eq + 1), "");
        }
        return result;
    }

    /**
     * Options for one backend by name, as {@link #parse} reads them: the way to set a backend's options
     * without naming its classes.
     *
     * @param backend the backend
     * @param settings {@code name=value} each, e.g. {@code "threads=2"}
     * @return the options
     * @throws IllegalArgumentException as {@link #parse}
     */
    public static PlanOptions of(SparseAttention backend, String... settings) {
        return parse(backend.name(), backend.options(), List.of(settings));
    }

    private <T> PlanOptions withParsed(Option<T> option, String text, String prefix) {
        try {
            return with(option, option.parse(text));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(prefix + e.getMessage(), e);
        }
    }

    /**
     * @param option the option
     * @param value its value for this plan
     * @param <T> the value type
     * @return these options with {@code option} set to {@code value}
     * @throws IllegalArgumentException naming the option when the value is not acceptable
     */
    public <T> PlanOptions with(Option<T> option, T value) {
        Map<Option<?>, Object> m = new LinkedHashMap<>(values);
        m.put(option, option.checked(value));
        return new PlanOptions(Collections.unmodifiableMap(m));
    }

    /**
     * @param defaults options to fall back on
     * @return these options, with those of {@code defaults} this one does not set
     */
    public PlanOptions over(PlanOptions defaults) {
        if (defaults.values.isEmpty()) {
            return this;
        }
        Map<Option<?>, Object> m = new LinkedHashMap<>(defaults.values);
        m.putAll(values);
        return new PlanOptions(Collections.unmodifiableMap(m));
    }

    /**
     * @param option the option
     * @param <T> the value type
     * @return the value set here, else the option's {@linkplain Option#fallback() fallback}
     */
    public <T> T get(Option<T> option) {
        Object v = values.get(option);
        return v != null ? option.type().cast(v) : option.fallback();
    }

    /** @return whether {@code option} is set here */
    public boolean isSet(Option<?> option) {
        return values.containsKey(option);
    }

    /** @return the options set here, in the order they were set */
    public Set<Option<?>> set() {
        return Collections.unmodifiableSet(values.keySet());
    }

    /**
     * Refuses an option the backend does not take.
     *
     * @param backend the backend's name, for the message
     * @param known the options it takes
     * @throws IllegalArgumentException naming the first unknown option and listing those it takes
     */
    public void checkKnown(String backend, List<Option<?>> known) {
        for (Option<?> o : values.keySet()) {
            if (!known.contains(o)) {
                throw new IllegalArgumentException(unknown(backend, o.name(), known));
            }
        }
    }

    private static String unknown(String backend, String name, List<Option<?>> known) {
        return backend + " backend has no option '" + name + "'; it takes "
                + (known.isEmpty() ? "none" : known.stream().map(Option::name).collect(Collectors.joining(", ")));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PlanOptions p && p.values.equals(values);
    }

    @Override
    public int hashCode() {
        return values.hashCode();
    }

    /** @return e.g. {@code "threads=2, kernels=mma"}, or {@code "defaults"} when none is set */
    @Override
    public String toString() {
        return values.isEmpty() ? "defaults" : values.entrySet().stream()
                .map(e -> e.getKey().name() + "=" + e.getValue()).collect(Collectors.joining(", "));
    }
}
