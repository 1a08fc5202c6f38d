package dev.starling.api.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/** The causes of file errors in plain words, for one-line messages ({@code "permission denied"}, {@code "is a FIFO"}). */
public final class Reasons {

    private Reasons() {
    }

    /**
     * The cause of an I/O error without the file name: the file system's reason where there is one
     * ({@code "no space left on device"}), else the message.
     *
     * @param e the error
     * @return the cause, starting in lower case
     */
    public static String of(IOException e) {
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return lowerFirst(f.getReason());
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof NoSuchFileException) {
            return "no such file or directory";
        }
        if (e instanceof java.nio.file.FileAlreadyExistsException) {
            return "already exists";
        }
        if (e instanceof java.nio.file.NotDirectoryException) {
            return "not a directory";
        }
        if (e instanceof java.nio.file.DirectoryNotEmptyException) {
            return "directory not empty";
        }
        if (e instanceof FileSystemException) {
            // Its message is only the file name: say what kind of failure it was.
            return e.getClass().getSimpleName();
        }
        return e.getMessage() != null ? lowerFirst(e.getMessage()) : e.getClass().getSimpleName();
    }

    /**
     * An I/O error as {@code "FILE: cause"} in plain words ({@code "o.npy: no such file or
     * directory"}); a message Starling wrote itself (no file attached) is kept as it is.
     *
     * @param e the error
     * @return one line
     */
    public static String message(IOException e) {
        if (e instanceof FileSystemException f && f.getFile() != null) {
            return f.getFile() + (f.getOtherFile() != null ? " -> " + f.getOtherFile() : "") + ": " + of(e);
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    /**
     * What a file that is neither a regular file nor a folder is, where the platform says:
     * {@code "is a FIFO"}, {@code "is a socket"}, {@code "is a character device"},
     * {@code "is a block device"}, else {@code "is a special file"}.
     *
     * @param file the file (links not followed)
     * @return the description
     */
    public static String kind(Path file) {
        try {
            Object mode = Files.getAttribute(file, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            if (mode instanceof Integer m) {
                switch (m & 0170000) {
                    case 0010000: return "is a FIFO";
                    case 0140000: return "is a socket";
                    case 0020000: return "is a character device";
                    case 0060000: return "is a block device";
                    default: break;
                }
            }
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            // No "unix" view here: fall back to the plain description.
        }
        return "is a special file";
    }

    private static String lowerFirst(String r) {
        return r.length() > 1 && Character.isLowerCase(r.charAt(1)) ? r.substring(0, 1).toLowerCase(Locale.ROOT) + r.substring(1)
                : r;
    }
}
