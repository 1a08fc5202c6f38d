package dev.starling.api.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Paths name files through links and {@code ..} as the operating system takes them (issue 27, items 1, 3, 4, 11). */
class RealFileTest {

    @Test
    void dotDotIsTakenOnTheRealFolderNotOnTheText(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        Files.createDirectories(tmp.resolve("other/sub"));
        Files.createSymbolicLink(tmp.resolve("a"), tmp.resolve("other/sub"));
        RealFile viaLink = RealFile.of(tmp.resolve("a/../x.npy"));
        RealFile direct = RealFile.of(tmp.resolve("other/x.npy"));
        assertEquals(tmp.resolve("other/x.npy"), viaLink.real());
        assertFalse(viaLink.exists());
        assertNull(viaLink.missingFolder());
        assertTrue(viaLink.sameFileAs(direct));
        assertTrue(viaLink.movedByLinks());
        assertFalse(direct.movedByLinks());
        assertTrue(viaLink.describe().contains("(the file " + tmp.resolve("other/x.npy") + ")"), viaLink.describe());
    }

    @Test
    void aSymlinkedFolderLeadsToTheFileInside(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        Files.createDirectory(tmp.resolve("in"));
        Path q = Files.writeString(tmp.resolve("in/q.npy"), "q");
        Files.createSymbolicLink(tmp.resolve("ln"), Path.of("in"));
        RealFile f = RealFile.of(tmp.resolve("ln/q.npy"));
        assertEquals(q, f.real());
        assertTrue(f.exists());
        assertTrue(f.sameFileAs(RealFile.of(q)));
        // Neither exists: the same name in the same real folder is still one file.
        assertTrue(RealFile.of(tmp.resolve("ln/new.npy")).sameFileAs(RealFile.of(tmp.resolve("in/./new.npy"))));
        assertFalse(RealFile.of(tmp.resolve("ln/new.npy")).sameFileAs(RealFile.of(tmp.resolve("in/other.npy"))));
    }

    @Test
    void aDanglingLinkIsFollowedToTheFileItWillCreate(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        Files.createDirectory(tmp.resolve("t"));
        Path link = Files.createSymbolicLink(tmp.resolve("o.npy"), Path.of("t/target.npy"));
        RealFile f = RealFile.of(link);
        assertEquals(tmp.resolve("t/target.npy"), f.real());
        assertFalse(f.exists());
    }

    @Test
    void hardLinksAreOneFile(@TempDir Path dir) throws IOException {
        Path a = Files.writeString(dir.resolve("a"), "x");
        Path b = Files.createLink(dir.resolve("b"), a);
        assertTrue(RealFile.of(a).sameFileAs(RealFile.of(b)));
    }

    @Test
    void aMissingFolderIsNamedAndALoopIsRefused(@TempDir Path dir) throws IOException {
        Path tmp = dir.toRealPath();
        RealFile f = RealFile.of(tmp.resolve("no/such/o.npy"));
        assertEquals(tmp.resolve("no"), f.missingFolder());
        Files.createSymbolicLink(tmp.resolve("l1"), tmp.resolve("l2"));
        Files.createSymbolicLink(tmp.resolve("l2"), tmp.resolve("l1"));
        IOException e = assertThrows(IOException.class, () -> RealFile.of(tmp.resolve("l1/x")));
        assertTrue(e.getMessage().contains("more than 40 symbolic links"), e.getMessage());
        Files.writeString(tmp.resolve("plain"), "x");
        e = assertThrows(IOException.class, () -> RealFile.of(tmp.resolve("plain/x")));
        assertTrue(e.getMessage().endsWith("is not a directory"), e.getMessage());
    }

    @Test
    void aTemporaryNameFitsEvenBesideTheLongestLegalName(@TempDir Path dir) throws IOException {
        String name = "o".repeat(250) + ".npy";
        Path target = Files.writeString(dir.resolve(name), "x");
        Path tmp = RealFile.of(target).sibling("0123456789abc.tmp");
        assertEquals(255, tmp.getFileName().toString().length());
        assertTrue(tmp.getFileName().toString().startsWith(".ooo"));
        Files.writeString(tmp, "created");
        String wide = "é".repeat(127);
        String hidden = RealFile.hiddenName(wide, "t");
        assertTrue(hidden.getBytes(StandardCharsets.UTF_8).length <= 255, hidden);
        assertEquals(".x.t", RealFile.hiddenName("x", "t"));
    }
}
