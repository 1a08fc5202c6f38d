package dev.starling.bench.output;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Output files written all or nothing: each is first written in full to a temporary file in its
 * target's directory, and {@link #commit()} renames them into place only after every one was
 * written. Until then the targets are untouched; {@link #close()} deletes the temporaries that were
 * not renamed, so a failure anywhere leaves the previous files as they were.
 *
 * <p>Each rename is atomic where the file system allows it ({@code ATOMIC_MOVE}, otherwise
 * {@code REPLACE_EXISTING}). Two files cannot be replaced in one atomic step: if the rename of a
 * later file fails after an earlier one succeeded (which needs the directory to change under us,
 * since both temporaries already exist beside their targets), the earlier target is already new.
 *
 * <p>Not thread-safe; one instance serves one command.
 */
public final class StagedFiles implements AutoCloseable {

    /** What to write into one file. */
    @FunctionalInterface
    public interface Content {
        /**
         * Writes the whole content.
         *
         * @param out the stream. Buffered; closed by the caller.
         * @throws IOException if writing fails
         */
        void writeTo(OutputStream out) throws IOException;
    }

    private record Staged(Path temporary, Path target) {
    }

    private final List<Staged> staged = new ArrayList<>();
    private boolean committed;

    /** Starts an empty set. */
    public StagedFiles() {
    }

    /**
     * Writes {@code content} in full to a new temporary file beside {@code target} and forces it
     * to the device. The target is not touched. A symbolic link as target is followed, so the
     * file it points at is replaced and the link kept.
     *
     * @param target the file to replace on {@link #commit()}
     * @param content what to write
     * @throws IOException naming the target and the cause, if the temporary cannot be created or
     *         written; the temporary is then deleted
     * @throws IllegalStateException if the set was already committed
     */
    public void stage(Path target, Content content) throws IOException {
        if (committed) {
            throw new IllegalStateException("already committed");
        }
        Path resolved = Files.isSymbolicLink(target) && Files.exists(target) ? target.toRealPath() : target.toAbsolutePath();
        Path temporary = createTemporary(resolved);
        staged.add(new Staged(temporary, resolved));
        try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE)) {
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16);
            content.writeTo(out);
            out.flush();
            channel.force(true);
        } catch (IOException e) {
            throw new IOException(target + ": cannot write (" + reason(e) + ")", e);
        }
    }

    /**
     * Renames every staged temporary onto its target, in the order staged.
     *
     * @throws IOException naming the target and the cause if a rename fails; the temporaries not
     *         yet renamed are deleted by {@link #close()}
     * @throws IllegalStateException if the set was already committed
     */
    public void commit() throws IOException {
        if (committed) {
            throw new IllegalStateException("already committed");
        }
        committed = true;
        while (!staged.isEmpty()) {
            Staged s = staged.get(0);
            try {
                try {
                    Files.move(s.temporary(), s.target(), StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(s.temporary(), s.target(), StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException e) {
                throw new IOException(s.target() + ": cannot replace (" + reason(e) + ")", e);
            }
            staged.remove(0);
        }
    }

    /** Deletes every temporary that was not renamed into place; the targets are left as they are. */
    @Override
    public void close() {
        for (Staged s : staged) {
            try {
                Files.deleteIfExists(s.temporary());
            } catch (IOException e) {
                // Best effort: a temporary we cannot delete is a hidden file beside the target, never the target.
            }
        }
        staged.clear();
    }

    /**
     * A new empty file named {@code .NAME.RANDOM.tmp} beside the target. Created with the default
     * permissions (not {@code createTempFile}'s owner-only ones), since it becomes the output.
     */
    private static Path createTemporary(Path target) throws IOException {
        Path dir = target.getParent();
        String name = target.getFileName().toString();
        for (int attempt = 0; ; attempt++) {
            Path temporary = dir.resolve("." + name + "." + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36)
                    + ".tmp");
            try {
                Files.newByteChannel(temporary, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
                // Removed on a normal exit or Ctrl-C if we never get to rename or delete it.
                temporary.toFile().deleteOnExit();
                return temporary;
            } catch (FileAlreadyExistsException e) {
                if (attempt == 10) {
                    throw e;
                }
            } catch (IOException e) {
                throw new IOException(target + ": cannot create a file in " + dir + " (" + reason(e) + ")", e);
            }
        }
    }

    /**
     * The cause of an I/O error in plain words, without the file name: the file system's reason
     * where there is one ({@code "no space left on device"}), else the message.
     *
     * @param e the error
     * @return the cause, starting in lower case
     */
    public static String reason(IOException e) {
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            String r = f.getReason();
            return r.length() > 1 && Character.isLowerCase(r.charAt(1)) ? Character.toLowerCase(r.charAt(0)) + r.substring(1) : r;
        }
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "no such file or directory";
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }
}
