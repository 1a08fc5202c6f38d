package dev.starling.api.pattern;

/**
 * Adds a pattern name to the text syntax. Register an implementation in
 * {@code META-INF/services/dev.starling.api.pattern.PatternProvider}; {@link Patterns#parse}
 * then resolves {@code name(...)} to it. Built-in names cannot be replaced: a provider that takes
 * a built-in name, or a name a provider earlier on the class path already took, is not used and
 * is reported with both classes and their jars ({@link dev.starling.api.spi.NamedProviders}).
 */
public interface PatternProvider {

    /** @return the pattern name as written in text, lowercase, e.g. {@code "bigbird"} */
    String name();

    /** @return the expected form with defaults, e.g. {@code "bigbird(block=64, window=3, global=2, random=3, seed=0)"} */
    String form();

    /**
     * Builds the pattern from parsed arguments. Read each argument through {@code args}; an
     * argument that is never read is reported to the user as unknown.
     *
     * @param args the parsed arguments
     * @return the pattern
     * @throws IllegalArgumentException if a value is out of range (the parser adds the position)
     */
    PatternSpec create(PatternArguments args);
}
