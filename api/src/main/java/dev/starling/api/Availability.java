package dev.starling.api;

import java.util.Objects;
import java.util.Optional;

/**
 * Whether a backend can run here, and if not, why. Never a bare boolean: an unavailable
 * backend always carries a reason a person can act on ("no libcuda.so.1", "no CUDA device").
 * An unavailable backend may also carry a <em>remedy</em>: what the user changes to enable it
 * ("start the JVM with --add-modules jdk.incubator.vector"); selection tells the user once per
 * process when such a backend would have outranked the one it picked.
 * Immutable.
 */
public final class Availability {
    private static final Availability AVAILABLE = new Availability(true, "", "");
    private final boolean available;
    private final String reason;
    private final String remedy;

    private Availability(boolean available, String reason, String remedy) {
        this.available = available;
        this.reason = reason;
        this.remedy = remedy;
    }

    /** @return an available backend with no note */
    public static Availability available() {
        return AVAILABLE;
    }

    /** @param note detail shown by {@code starling backends}, e.g. a library version @return an available backend */
    public static Availability available(String note) {
        return new Availability(true, note == null ? "" : note, "");
    }

    /**
     * @param reason why the backend cannot run; must not be blank
     * @return an unavailable backend
     */
    public static Availability unavailable(String reason) {
        return new Availability(false, requireText(reason, "reason"), "");
    }

    /**
     * An unavailable backend the user can enable.
     *
     * @param reason why the backend cannot run, e.g. "the Vector API module jdk.incubator.vector is not
     *               in the boot layer"; must not be blank
     * @param remedy what the user does to enable it, e.g. "start the JVM with --add-modules
     *               jdk.incubator.vector"; must not be blank
     * @return an unavailable backend whose {@link #reason()} is {@code reason + "; " + remedy}
     */
    public static Availability fixable(String reason, String remedy) {
        return new Availability(false, requireText(reason, "reason") + "; " + requireText(remedy, "remedy"), remedy);
    }

    private static String requireText(String text, String what) {
        Objects.requireNonNull(text, what);
        if (text.isBlank()) {
            throw new IllegalArgumentException("an unavailable backend must give a " + what);
        }
        return text;
    }

    /** @return whether the backend can create plans in this process */
    public boolean isAvailable() {
        return available;
    }

    /** @return why it cannot run, or for an available backend an optional note ({@code ""} if none) */
    public String reason() {
        return reason;
    }

    /** @return what the user does to make an unavailable backend available, if it is a thing the user can fix */
    public Optional<String> remedy() {
        return remedy.isEmpty() ? Optional.empty() : Optional.of(remedy);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Availability a && a.available == available && a.reason.equals(reason)
                && a.remedy.equals(remedy);
    }

    @Override
    public int hashCode() {
        return (Boolean.hashCode(available) * 31 + reason.hashCode()) * 31 + remedy.hashCode();
    }

    @Override
    public String toString() {
        return available ? (reason.isEmpty() ? "available" : "available (" + reason + ")") : "unavailable: " + reason;
    }
}
