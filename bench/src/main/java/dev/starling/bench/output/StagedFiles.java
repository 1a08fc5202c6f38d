package dev.starling.bench.output;

import dev.starling.api.io.Reasons;
import dev.starling.api.io.RealFile;
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
import java.util.HashSet;
import java.util.List;
import java.util.Set;
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
 * A shutdown hook deletes every temporary not yet renamed, so SIGTERM or Ctrl-C during the write
 * phase leaves none behind.
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

    private record Staged(Path temporary, RealFile target) {
    }

    /**
     * Every temporary of this JVM not yet renamed or deleted; the shutdown hook deletes them, so
     * SIGTERM or Ctrl-C at any point of the write phase leaves no hidden file. Creating a temporary
     * and registering it happen under this lock, as does each rename, so the hook never runs between.
     */
    private static final Set<Path> LIVE = new HashSet<>();
    private static boolean shuttingDown;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(StagedFiles::deleteLive, "starling-staged-files"));
    }

    private final List<Staged> staged = new ArrayList<>();
    private boolean committed;

    /** Starts an empty set. */
    public StagedFiles() {
    }

    /**
     * Writes {@code content} in full to a new temporary file beside the file {@code target} names
     * (links and {@code ..} followed, as {@link RealFile} resolves them) and forces it to the device.
     *
     * @param target the file to replace on {@link #commit()}
     * @param content what to write
     * @throws IOException naming the target and the cause, as {@link #stage(RealFile, Content)}
     */
    public void stage(Path target, Content content) throws IOException {
        stage(RealFile.of(target), content);
    }

    /**
     * Writes {@code content} in full to a new temporary file beside {@code target}'s real file and
     * forces it to the device. The target is not touched; a link on the way stays a link, and the
     * file it leads to is replaced.
     *
     * @param target the file to replace on {@link #commit()}, resolved (by {@link dev.starling.api.io.TouchedFiles})
     * @param content what to write
     * @throws IOException naming the target and the cause, if the temporary cannot be created or
     *         written; the temporary is then deleted
     * @throws IllegalStateException if the set was already committed
     */
    public void stage(RealFile target, Content content) throws IOException {
        if (committed) {
            throw new IllegalStateException("already committed");
        }
        Path temporary = createTemporary(target);
        staged.add(new Staged(temporary, target));
        try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE)) {
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16);
            content.writeTo(out);
            out.flush();
            channel.force(true);
        } catch (IOException e) {
            throw new IOException(target + ": cannot write (" + Reasons.of(e) + ")", e);
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
            Path real = s.target().real();
            synchronized (LIVE) {
                if (shuttingDown) {
                    throw new IOException(s.target() + ": not replaced (the JVM is shutting down)");
                }
                try {
                    try {
                        Files.move(s.temporary(), real, StandardCopyOption.ATOMIC_MOVE);
                    } catch (AtomicMoveNotSupportedException e) {
                        Files.move(s.temporary(), real, StandardCopyOption.REPLACE_EXISTING);
                    }
                } catch (IOException e) {
                    throw new IOException(s.target() + ": cannot replace (" + Reasons.of(e) + ")", e);
                }
                LIVE.remove(s.temporary());
            }
            staged.remove(0);
        }
    }

    /** Deletes every temporary that was not renamed into place; the targets are left as they are. */
    @Override
    public void close() {
        for (Staged s : staged) {
            synchronized (LIVE) {
                delete(s.temporary());
            }
        }
        staged.clear();
    }

    /**
     * A new empty file {@code .NAME.RANDOM.tmp} beside the target ({@link RealFile#sibling}, so a
     * legal name never gives a temporary name too long), registered for the shutdown hook. Created
     * with the default permissions (not {@code createTempFile}'s owner-only ones), since it becomes
     * the output.
     */
    private static Path createTemporary(RealFile target) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path temporary = target.sibling(Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
            synchronized (LIVE) {
                if (shuttingDown) {
                    throw new IOException(target + ": not written (the JVM is shutting down)");
                }
                try {
                    Files.newByteChannel(temporary, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
                    LIVE.add(temporary);
                    return temporary;
                } catch (FileAlreadyExistsException e) {
                    if (attempt == 10) {
                        throw e;
                    }
                } catch (IOException e) {
                    throw new IOException(target + ": cannot create a file in " + target.folder() + " (" + Reasons.of(e)
                            + ")", e);
                }
            }
        }
    }

    private static void deleteLive() {
        synchronized (LIVE) {
            shuttingDown = true;
            for (Path p : List.copyOf(LIVE)) {
                delete(p);
            }
        }
    }

    /** Deletes a temporary; best effort: one we cannot delete is a hidden file beside the target, never the target. */
    private static void delete(Path temporary) {
        try {
            Files.deleteIfExists(temporary);
        } catch (IOException e) {
            // Left as it is (see above).
        }
        LIVE.remove(temporary);
    }
}
