package dev.starling.api.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The files one command reads and writes, each resolved to the {@link RealFile real file} it will
 * touch and checked when it is added, before anything is read or computed:
 *
 * <ul>
 *   <li>an input must be an existing, readable regular file;</li>
 *   <li>an output must be creatable or replaceable: its real folder exists and may be written in,
 *       and what is there now (if anything) is a writable regular file; its name fits the file
 *       system's 255 bytes;</li>
 *   <li>an output is never the same file as an input, nor as another output, through links,
 *       {@code ..} and hard links.</li>
 * </ul>
 *
 * Each refusal is one line naming the option, the path as given and, when links moved it, the
 * real file. Unreadable or unwritable files give an {@link IOException}; collisions an
 * {@link IllegalArgumentException}. Not thread-safe; one instance per command.
 */
public final class TouchedFiles {
    /** The longest file name, in bytes, that Linux file systems take ({@code NAME_MAX}). */
    public static final int NAME_MAX = 255;

    private record Entry(String role, RealFile file, boolean output) {
    }

    private final String command;
    private final List<Entry> entries = new ArrayList<>();

    /**
     * Starts an empty set.
     *
     * @param command the command's name for messages ({@code "run"}: "run never writes over an input")
     */
    public TouchedFiles(String command) {
        this.command = command;
    }

    /**
     * Adds an input.
     *
     * @param role the option or field that named it ({@code "--q"}, {@code "k of sequence 'a'"})
     * @param path the path as given. Not modified.
     * @return the file it names
     * @throws IOException if it is missing, not a regular file or not readable
     */
    public RealFile input(String role, Path path) throws IOException {
        RealFile f = resolve(role, path);
        Path real = f.real();
        if (!f.exists()) {
            throw new IOException(role + " " + path + (Files.isSymbolicLink(path) ? ": a symbolic link to a missing file "
                    + real : f.movedByLinks() ? ": no such file (" + real + ")" : ": no such file"));
        }
        requireRegular(role, f);
        if (!Files.isReadable(real)) {
            throw new IOException(role + " " + f.describe() + ": permission denied");
        }
        entries.add(new Entry(role, f, false));
        return f;
    }

    /**
     * Adds an output.
     *
     * @param role the option or field that named it
     * @param path the path as given. Not modified.
     * @return the file it names: write (atomically) beside {@link RealFile#real()}
     * @throws IOException if it cannot be created or replaced
     * @throws IllegalArgumentException if it is the same file as an input or an output added before
     */
    public RealFile output(String role, Path path) throws IOException {
        RealFile f = resolve(role, path);
        Path real = f.real();
        if (f.exists()) {
            requireRegular(role, f);
            if (!Files.isWritable(real)) {
                throw new IOException(role + " " + f.describe() + ": permission denied (the file is read-only)");
            }
        }
        Path folder = f.folder();
        if (folder == null || real.getFileName() == null) {
            throw new IOException(role + " " + path + ": is a directory");
        }
        if (real.getFileName().toString().getBytes(StandardCharsets.UTF_8).length > NAME_MAX) {
            throw new IOException(role + " " + path + ": file name too long (more than " + NAME_MAX + " bytes)");
        }
        if (f.missingFolder() != null) {
            throw new IOException(role + " " + path + ": no such directory " + f.missingFolder());
        }
        if (!Files.isWritable(folder)) {
            throw new IOException(role + " " + f.describe() + ": permission denied (cannot create files in " + folder + ")");
        }
        for (Entry e : entries) {
            if (e.file().sameFileAs(f)) {
                throw new IllegalArgumentException(e.output()
                        ? e.role() + " " + e.file().given() + " and " + role + " " + path + " are the same file "
                                + real + "; give them different names"
                        : role + " " + f.describe() + " is the same file as " + e.role() + " " + e.file().given() + "; "
                                + command + " never writes over an input");
            }
        }
        entries.add(new Entry(role, f, true));
        return f;
    }

    private static RealFile resolve(String role, Path path) throws IOException {
        if (path.toString().isEmpty()) {
            throw new IOException(role + ": empty file name");
        }
        try {
            return RealFile.of(path);
        } catch (IOException e) {
            throw new IOException(role + " " + e.getMessage(), e);
        }
    }

    private static void requireRegular(String role, RealFile f) throws IOException {
        Path real = f.real();
        if (Files.isDirectory(real, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(role + " " + f.describe() + ": is a directory");
        }
        if (!Files.isRegularFile(real, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(role + " " + f.describe() + ": " + Reasons.kind(real) + ", not a regular file");
        }
    }
}
