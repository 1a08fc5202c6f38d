package dev.starling.api.io;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The file a path names, as the operating system would reach it: every symbolic link followed
 * (including a last one that points at a file not created yet), {@code .} dropped and {@code ..}
 * taken on the real folder it follows, not on the text ({@code a/../x} with {@code a -> other/sub}
 * is {@code other/x}), the path made absolute against the working folder. Two paths name the same
 * file exactly when their {@code RealFile}s are {@link #sameFileAs the same}, hard links and bind
 * mounts included.
 *
 * <p>Resolution walks the path one name at a time from the root, as {@code realpath(3)} does,
 * with at most {@value #MAX_LINKS} links; it stops at the first name that does not exist, and the
 * rest of the path is taken as written ({@link #missingFolder()} then names where it stopped).
 * Nothing is created, opened or changed.
 */
public final class RealFile {
    /** Most symbolic links followed in one path, as Linux's {@code MAXSYMLINKS}. */
    public static final int MAX_LINKS = 40;

    private final Path given;
    private final Path real;
    private final boolean exists;
    private final Path missingFolder;

    private RealFile(Path given, Path real, boolean exists, Path missingFolder) {
        this.given = given;
        this.real = real;
        this.exists = exists;
        this.missingFolder = missingFolder;
    }

    /**
     * Resolves a path.
     *
     * @param given the path as the user wrote it. Not modified.
     * @return the file it names
     * @throws IOException naming {@code given} when a folder on the way is a regular file, a name is
     *         too long, there are more than {@value #MAX_LINKS} links, or a folder cannot be read
     */
    public static RealFile of(Path given) throws IOException {
        Path abs = given.toAbsolutePath();
        Deque<String> names = new ArrayDeque<>();
        for (Path name : abs) {
            names.addLast(name.toString());
        }
        Path cur = abs.getRoot();
        int links = 0;
        try {
            while (!names.isEmpty()) {
                String name = names.removeFirst();
                if (name.isEmpty() || name.equals(".")) {
                    continue;
                }
                if (name.equals("..")) {
                    // cur holds no link, so its parent is the real parent.
                    cur = cur.getParent() == null ? cur : cur.getParent();
                    continue;
                }
                Path next = cur.resolve(name);
                if (Files.isSymbolicLink(next)) {
                    if (++links > MAX_LINKS) {
                        throw new IOException(given + ": more than " + MAX_LINKS + " symbolic links (a loop?)");
                    }
                    Path target = Files.readSymbolicLink(next);
                    Deque<String> front = new ArrayDeque<>();
                    for (Path part : target) {
                        front.addLast(part.toString());
                    }
                    while (!front.isEmpty()) {
                        names.addFirst(front.removeLast());
                    }
                    if (target.isAbsolute()) {
                        cur = target.getRoot();
                    }
                    continue;
                }
                if (!Files.exists(next, LinkOption.NOFOLLOW_LINKS)) {
                    Path rest = next;
                    for (String n : names) {
                        rest = rest.resolve(n);
                    }
                    return new RealFile(given, rest.normalize(), false, names.isEmpty() ? null : next);
                }
                if (!names.isEmpty() && !Files.isDirectory(next, LinkOption.NOFOLLOW_LINKS)) {
                    throw new IOException(given + ": " + next + " is not a directory");
                }
                cur = next;
            }
        } catch (FileSystemException e) {
            if (e.getReason() != null && e.getReason().toLowerCase(java.util.Locale.ROOT).contains("name too long")) {
                throw new IOException(given + ": file name too long", e);
            }
            throw new IOException(given + ": " + Reasons.of(e), e);
        }
        return new RealFile(given, cur, true, null);
    }

    /** @return the path as given */
    public Path given() {
        return given;
    }

    /** @return the absolute path of the file itself, with no symbolic link, {@code .} or {@code ..} in it */
    public Path real() {
        return real;
    }

    /** @return whether something exists at {@link #real()} (a file, a folder or a special file) */
    public boolean exists() {
        return exists;
    }

    /** @return the real folder the file is in, or {@code null} for the root */
    public Path folder() {
        return real.getParent();
    }

    /**
     * @return the first folder on the way that does not exist, or {@code null} when every folder
     *         holding the file exists
     */
    public Path missingFolder() {
        return missingFolder;
    }

    /** @return whether {@link #real()} differs from the given path made absolute (a link or {@code ..} was on the way) */
    public boolean movedByLinks() {
        return !real.equals(given.toAbsolutePath().normalize());
    }

    /**
     * Whether writing one of the two would change the other: the same file (hard links and bind
     * mounts included) when both exist; the same name in the same folder when neither does.
     *
     * @param other another file
     * @return whether they are one file
     * @throws IOException if an existing file cannot be inspected
     */
    public boolean sameFileAs(RealFile other) throws IOException {
        if (real.equals(other.real)) {
            return true;
        }
        if (exists && other.exists) {
            return Files.isSameFile(real, other.real);
        }
        if (exists || other.exists) {
            return false;
        }
        Path a = folder();
        Path b = other.folder();
        return a != null && b != null && real.getFileName().equals(other.real.getFileName()) && missingFolder == null
                && other.missingFolder == null && Files.isSameFile(a, b);
    }

    /**
     * A hidden file beside this one for a temporary: {@code .NAME.TAG} in {@link #folder()}, with
     * {@code NAME} shortened (by whole characters) so the name fits {@value TouchedFiles#NAME_MAX}
     * bytes, so a legal output name never makes its temporary's name too long.
     *
     * @param tag what makes the name unique ({@code "k3v9x1.tmp"}); ASCII, at most 64 characters
     * @return the temporary's path
     */
    public Path sibling(String tag) {
        return real.resolveSibling(hiddenName(real.getFileName().toString(), tag));
    }

    /**
     * The name {@link #sibling} gives: {@code "." + name + "." + tag}, {@code name} cut to fit
     * {@value TouchedFiles#NAME_MAX} bytes of UTF-8.
     *
     * @param name the target's file name
     * @param tag what makes the name unique; ASCII, at most 64 characters
     * @return the hidden name
     */
    public static String hiddenName(String name, String tag) {
        if (tag.length() > 64) {
            throw new IllegalArgumentException("tag must be at most 64 characters, got " + tag.length());
        }
        int budget = TouchedFiles.NAME_MAX - 2 - tag.length();
        int end = 0;
        int bytes = 0;
        while (end < name.length()) {
            int cp = name.codePointAt(end);
            int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (bytes + n > budget) {
                break;
            }
            bytes += n;
            end += Character.charCount(cp);
        }
        return "." + name.substring(0, end) + "." + tag;
    }

    /** @return the given path, and the real file when links or {@code ..} moved it: {@code "ln/q.npy (the file /data/in/q.npy)"} */
    public String describe() {
        return movedByLinks() ? given + " (the file " + real + ")" : given.toString();
    }

    @Override
    public String toString() {
        return describe();
    }
}
