package dev.starling.api.selection;

/**
 * No backend can run the problem, or the backend named by {@code -Dstarling.backend} /
 * {@code STARLING_BACKEND} is missing or unavailable. The message lists every backend found
 * and why each was refused.
 */
public final class NoBackendException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** @param message the explanation, listing every backend */
    public NoBackendException(String message) {
        super(message);
    }
}
