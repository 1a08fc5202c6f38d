package dev.starling.api.npy;

import java.io.IOException;

/** A {@code .npy} file that is corrupt, truncated or of a kind Starling does not read. */
public final class NpyFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /** @param message what is wrong, naming the file */
    public NpyFormatException(String message) {
        super(message);
    }
}
