package dev.starling.bench.compare;

/**
 * The Java heap is too small for what {@code starling compare} was asked to run: a setting to change,
 * not a bug, so the tool reports it as one line of bad usage (exit 2) with the {@code -Xmx} to use.
 */
public final class NotEnoughMemoryException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /** @param message what needs how much, and the option that gives it */
    public NotEnoughMemoryException(String message) {
        super(message);
    }
}
