package dev.starling.bench.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tool's checks on file arguments, made before anything is read or computed: each names the
 * file and the cause in plain words ({@code "/nonexistent/dir/o.npy: no such directory"},
 * {@code "x: is a directory"}) and throws an {@link IOException}, which the tool reports as bad
 * input.
 */
final class FileChecks {

    private FileChecks() {
    }

    /**
     * Refuses an input that is not an existing, readable regular file.
     *
     * @param file the input
     * @throws IOException saying what the path is instead
     */
    static void requireReadable(Path file) throws IOException {
        if (!Files.exists(file)) {
            throw new IOException(file + (Files.isSymbolicLink(file) ? ": a symbolic link to a missing file" : ": no such file"));
        }
        requireRegular(file);
        if (!Files.isReadable(file)) {
            throw new IOException(file + ": permission denied");
        }
    }

    /**
     * Refuses an output the tool could not create or replace: a missing directory, a directory
     * or special file (FIFO, device, socket) in its place, a read-only file, a directory we may not
     * write in.
     *
     * @param file the output
     * @throws IOException saying why it cannot be written
     */
    static void requireWritable(Path file) throws IOException {
        if (Files.exists(file)) {
            requireRegular(file);
            if (!Files.isWritable(file)) {
                throw new IOException(file + ": permission denied (the file is read-only)");
            }
        }
        Path dir = file.toAbsolutePath().getParent();
        if (dir == null) {
            throw new IOException(file + ": is a directory");
        }
        if (!Files.exists(dir)) {
            throw new IOException(file + ": no such directory");
        }
        if (!Files.isDirectory(dir)) {
            throw new IOException(file + ": " + dir + " is not a directory");
        }
        if (!Files.isWritable(dir)) {
            throw new IOException(file + ": permission denied (cannot create files in " + dir + ")");
        }
    }

    /**
     * Whether two paths name the same file: through symbolic links, {@code ./x} against {@code x},
     * and hard links. Paths that do not exist yet are compared by their directory's real path and
     * their name.
     *
     * @param a a path
     * @param b another path
     * @return whether writing one would change the other
     * @throws IOException if a path exists but cannot be resolved
     */
    static boolean sameFile(Path a, Path b) throws IOException {
        if (Files.exists(a) && Files.exists(b)) {
            return Files.isSameFile(a, b);
        }
        return identity(a).equals(identity(b));
    }

    /** The real path of a file, or of its directory plus its name when the file does not exist. */
    private static Path identity(Path p) throws IOException {
        if (Files.exists(p)) {
            return p.toRealPath();
        }
        Path abs = p.toAbsolutePath().normalize();
        Path dir = abs.getParent();
        if (dir == null || abs.getFileName() == null) {
            return abs;
        }
        return (Files.isDirectory(dir) ? dir.toRealPath() : dir).resolve(abs.getFileName());
    }

    private static void requireRegular(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new IOException(file + ": is a directory");
        }
        if (!Files.isRegularFile(file)) {
            throw new IOException(file + ": " + kind(file) + ", not a regular file");
        }
    }

    /** What a file that is neither a regular file nor a directory is, where the platform says. */
    private static String kind(Path file) {
        try {
            Object mode = Files.getAttribute(file, "unix:mode");
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
}
