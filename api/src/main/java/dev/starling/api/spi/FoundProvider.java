package dev.starling.api.spi;

/**
 * One provider of a service that {@link NamedProviders} located: its class, where that class
 * came from, its name, and either the instance or why there is none.
 *
 * <p>Exactly one of {@code instance} and {@code problem} is {@code null}.
 *
 * @param className the provider class name, or {@code "<unknown provider>"} when a failure did not say
 * @param source where the class came from: a jar or folder path (its code source, or the
 *               {@code META-INF/services} file that listed it), or {@code "unknown location"}
 * @param name the name the provider reports, or {@code null} when it could not be read
 * @param instance the provider, or {@code null} when it cannot be used
 * @param problem why it cannot be used (one line), or {@code null} when it can
 * @param <S> the service type
 */
public record FoundProvider<S>(String className, String source, String name, S instance, String problem) {

    /**
     * Checks that exactly one of {@code instance} and {@code problem} is given.
     *
     * @param className the provider class name
     * @param source where the class came from
     * @param name the provider's name, or {@code null}
     * @param instance the provider, or {@code null}
     * @param problem why it cannot be used, or {@code null}
     * @throws IllegalArgumentException if both or neither of {@code instance} and {@code problem} are given
     */
    public FoundProvider {
        if ((instance == null) == (problem == null)) {
            throw new IllegalArgumentException("a found provider has either an instance or a problem: " + className);
        }
    }

    /** @return whether the provider can be used */
    public boolean usable() {
        return problem == null;
    }

    /** @return the name when known, else the class name: how listings show this provider */
    public String label() {
        return name != null ? name : className;
    }

    /** @return the class and where it came from, e.g. {@code "a.b.CudaBackend from /lib/starling-backend-cuda.jar"} */
    public String origin() {
        return className + " from " + source;
    }

    /**
     * @param why why this provider is not used
     * @return the same provider, without its instance, with that problem
     */
    FoundProvider<S> refused(String why) {
        return new FoundProvider<>(className, source, name, null, why);
    }
}
