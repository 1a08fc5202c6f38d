package dev.starling.bench.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StagedFilesTest {

    private static Set<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    private static StagedFiles.Content text(String s) {
        return out -> out.write(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void commitReplacesEveryTargetAndLeavesNoTemporary(@TempDir Path dir) throws Exception {
        Path a = Files.writeString(dir.resolve("a.npy"), "old a, longer than the new content");
        Path b = dir.resolve("b.npy");
        try (StagedFiles files = new StagedFiles()) {
            files.stage(a, text("new a"));
            files.stage(b, text("new b"));
            assertEquals("old a, longer than the new content", Files.readString(a), "untouched until commit");
            assertTrue(Files.notExists(b));
            files.commit();
        }
        assertEquals("new a", Files.readString(a));
        assertEquals("new b", Files.readString(b));
        assertEquals(Set.of("a.npy", "b.npy"), names(dir));
    }

    @Test
    void aFailedWriteLeavesEveryTargetAsItWasAndDeletesTheTemporaries(@TempDir Path dir) throws Exception {
        Path a = Files.writeString(dir.resolve("a.npy"), "old a");
        Path b = Files.writeString(dir.resolve("b.npy"), "old b");
        IOException e;
        try (StagedFiles files = new StagedFiles()) {
            files.stage(a, text("new a"));
            e = assertThrows(IOException.class, () -> files.stage(b, out -> {
                out.write(new byte[100_000]);
                throw new IOException("No space left on device");
            }));
        }
        assertEquals(b + ": cannot write (no space left on device)", e.getMessage());
        assertEquals("old a", Files.readString(a));
        assertEquals("old b", Files.readString(b));
        assertEquals(Set.of("a.npy", "b.npy"), names(dir));
    }

    @Test
    void closingWithoutCommitChangesNothing(@TempDir Path dir) throws Exception {
        Path a = Files.writeString(dir.resolve("a.npy"), "old a");
        try (StagedFiles files = new StagedFiles()) {
            files.stage(a, text("new a"));
            files.stage(dir.resolve("c.npy"), text("new c"));
        }
        assertEquals("old a", Files.readString(a));
        assertEquals(Set.of("a.npy"), names(dir));
    }

    @Test
    void aMissingDirectoryIsNamedWithTheTarget(@TempDir Path dir) {
        Path missing = dir.resolve("no").resolve("o.npy");
        try (StagedFiles files = new StagedFiles()) {
            IOException e = assertThrows(IOException.class, () -> files.stage(missing, text("x")));
            assertTrue(e.getMessage().startsWith(missing + ": "), e.getMessage());
        }
    }

    @Test
    void aSymbolicLinkIsFollowedAndKept(@TempDir Path dir) throws Exception {
        Path real = Files.writeString(dir.resolve("real.npy"), "old");
        Path link = Files.createSymbolicLink(dir.resolve("link.npy"), real);
        try (StagedFiles files = new StagedFiles()) {
            files.stage(link, text("new"));
            files.commit();
        }
        assertTrue(Files.isSymbolicLink(link));
        assertEquals("new", Files.readString(real));
    }
}
