package dev.starling.api.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The output-path policy: collisions through links and {@code ..} are refused before any work (issue 27). */
class TouchedFilesTest {

    @Test
    void anOutputThroughASymlinkedFolderOntoAnInputIsRefused(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        Files.createDirectory(tmp.resolve("in"));
        Path q = Files.writeString(tmp.resolve("in/q.npy"), "q");
        Files.createSymbolicLink(tmp.resolve("ln"), tmp.resolve("in"));
        TouchedFiles files = new TouchedFiles("run");
        files.input("--q", q);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> files.output("--out", tmp.resolve("ln/q.npy")));
        assertEquals("--out " + tmp.resolve("ln/q.npy") + " (the file " + q + ") is the same file as --q " + q
                + "; run never writes over an input", e.getMessage());
    }

    @Test
    void twoOutputsThatMeetThroughDotDotAreRefusedBeforeEitherExists(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        Files.createDirectories(tmp.resolve("other/sub"));
        Files.createSymbolicLink(tmp.resolve("a"), tmp.resolve("other/sub"));
        TouchedFiles files = new TouchedFiles("run");
        files.output("--out", tmp.resolve("a/../x.npy"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> files.output("--lse", tmp.resolve("other/x.npy")));
        assertTrue(e.getMessage().contains("are the same file " + tmp.resolve("other/x.npy")), e.getMessage());
    }

    @Test
    void unwritableAndUnreadableFilesAreNamedWithTheirCause(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        TouchedFiles files = new TouchedFiles("run");
        IOException e = assertThrows(IOException.class, () -> files.input("--q", tmp));
        assertEquals("--q " + tmp + ": is a directory", e.getMessage());
        e = assertThrows(IOException.class, () -> files.input("--q", tmp.resolve("none.npy")));
        assertEquals("--q " + tmp.resolve("none.npy") + ": no such file", e.getMessage());
        e = assertThrows(IOException.class, () -> files.output("--out", tmp.resolve("no/o.npy")));
        assertEquals("--out " + tmp.resolve("no/o.npy") + ": no such directory " + tmp.resolve("no"), e.getMessage());
        e = assertThrows(IOException.class, () -> files.output("--out", tmp));
        assertEquals("--out " + tmp + ": is a directory", e.getMessage());
        e = assertThrows(IOException.class, () -> files.output("--out", Path.of("")));
        assertEquals("--out: empty file name", e.getMessage());
        e = assertThrows(IOException.class, () -> files.output("--out", tmp.resolve("o".repeat(256))));
        assertTrue(e.getMessage().endsWith("file name too long (more than 255 bytes)"), e.getMessage());
        Path link = Files.createSymbolicLink(tmp.resolve("dangling"), tmp.resolve("gone.npy"));
        e = assertThrows(IOException.class, () -> files.input("--k", link));
        assertEquals("--k " + link + ": a symbolic link to a missing file " + tmp.resolve("gone.npy"), e.getMessage());
    }

    @Test
    void aReadOnlyFolderBehindALinkIsRefusedBeforeTheCompute(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        Path ro = Files.createDirectory(tmp.resolve("ro"));
        Files.createSymbolicLink(tmp.resolve("l"), ro);
        assertTrue(ro.toFile().setWritable(false));
        try {
            assumeFalse(Files.isWritable(ro), "running as root: every folder is writable, so there is nothing to refuse");
            IOException e = assertThrows(IOException.class,
                    () -> new TouchedFiles("run").output("--out", tmp.resolve("l/o.npy")));
            assertTrue(e.getMessage().contains("permission denied (cannot create files in " + ro + ")"), e.getMessage());
        } finally {
            ro.toFile().setWritable(true);
        }
    }
}
