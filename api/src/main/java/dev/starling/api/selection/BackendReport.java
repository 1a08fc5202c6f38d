package dev.starling.api.selection;

import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.SparseAttention;

/**
 * What discovery learned about one registered backend. A provider that could not even be
 * instantiated (a broken jar) has a {@code null} backend and an unavailable availability whose
 * reason is the load error.
 *
 * @param name the backend's name, or the provider class name when it could not be loaded
 * @param priority its priority ({@code Integer.MIN_VALUE} when not loaded)
 * @param availability available, or the reason it is not
 * @param capabilities its capabilities, or {@code null} when not loaded
 * @param backend the instance, or {@code null} when not loaded
 */
public record BackendReport(String name, int priority, Availability availability, Capabilities capabilities,
                            SparseAttention backend) {

    /** @return whether the backend can be used */
    public boolean usable() {
        return backend != null && availability.isAvailable();
    }
}
