package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.starling.api.npy.NpyArray;
import dev.starling.api.npy.NpyFormatException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Issue 27, items 10 and 11: numbers in pattern text and {@code .npy} headers are ASCII digits only
 * ({@link Character#isDigit} takes Arabic-Indic digits, which {@code Long.parseLong} reads), and an
 * unreadable layout file says why in plain words.
 */
class AsciiDigitsAndFileErrorsTest {

    @Test
    void patternTextRefusesNonAsciiDigits() {
        assertEquals("dense(block=64)", Patterns.parse("dense(block=64)").text());
        for (String text : new String[] {"dense(block=\u0666\u0664)", "window(block=16, blocks=\u0663)",
                "dense(block=\uff16\uff14)"}) {
            assertThrows(PatternSyntaxException.class, () -> Patterns.parse(text), text);
        }
    }

    private static byte[] npy(String header) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        int total = 10 + h.length + 1;
        int pad = (64 - total % 64) % 64;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 3, 0});
        int len = h.length + pad + 1;
        out.write(new byte[] {(byte) len, (byte) (len >> 8), (byte) (len >> 16), (byte) (len >> 24)});
        out.write(h);
        out.write(" ".repeat(pad).getBytes(StandardCharsets.US_ASCII));
        out.write('\n');
        out.write(new byte[8]);
        return out.toByteArray();
    }

    @Test
    void npyHeadersRefuseNonAsciiDigits() throws Exception {
        String good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        assertEquals(2, NpyArray.read(new ByteArrayInputStream(npy(good)), "good.npy").shape()[0]);
        byte[] bad = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (\u0662,), }");
        assertThrows(NpyFormatException.class, () -> NpyArray.read(new ByteArrayInputStream(bad), "bad.npy"));
    }

    @Test
    void anUnreadableLayoutFileSaysPermissionDenied() {
        // As root no file is unreadable, so the message is checked on the exception the file system gives.
        UncheckedIOException e = ExplicitPattern.readFailure(Path.of("mask.npy"), new AccessDeniedException("mask.npy"));
        assertEquals("cannot read layout file mask.npy: permission denied", e.getMessage());
    }
}
