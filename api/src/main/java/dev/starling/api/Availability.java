package dev.starling.api;

import java.util.Objects;

/**
 * Whether a backend can run here, and if not, why. Never a bare boolean: an unavailable
 * backend always carries a reason a person can act on ("no libcuda.so.1", "no CUDA device").
 * Immutable.
 */
public final class Availability {
    private static final Availability AVAILABLE = new Availability(true, "");
    private final boolean available;
    private final String reason;

    private Availability(boolean available, String reason) {
        this.available = available;
        this.reason = reason;
    }

    /** @return an available backend with no note */
    public static Availability available() {
        return AVAILABLE;
    }

    /** @param note detail shown by {@code starling backends}, e.g. a library version @return an available backend */
    public static Availability available(String note) {
        return new Availability(true, note == null ? "" : note);
    }

    /**
     * @param reason why the backend cannot run; must not be blank
     * @return an unavailable backend
     */
    public static Availability unavailable(String reason) {
        Objects.requireNonNull(reason, "reason");
        if (reason.isBlank()) {
            throw new IllegalArgumentException("an unavailable backend must give a reason");
        }
        return new Availability(false, reason);
    }

    /** @return whether the backend can create plans in this process */
    public boolean isAvailable() {
        return available;
    }

    /** @return why it cannot run, or for an available backend an optional note ({@code ""} if none) */
    public String reason() {
        return reason;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Availability a && a.available == available && a.reason.equals(reason);
    }

    @Override
    public int hashCode() {
        return Boolean.hashCode(available) * 31 + reason.hashCode();
    }

    @Override
    public String toString() {
        return available ? (reason.isEmpty() ? "available" : "available (" + reason + ")") : "unavailable: " + reason;
    }
}
