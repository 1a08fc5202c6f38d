package dev.starling.api.npy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The header is parsed as NumPy's dictionary literal: a duplicated or smuggled key cannot change the dtype. */
class NpyHeaderTest {

    /** A version 1.0 file with the given header text and {@code dataBytes} zero bytes of data. */
    private static byte[] file(String header, int dataBytes) {
        byte[] h = (header + "\n").getBytes(StandardCharsets.ISO_8859_1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (byte) h.length, (byte) (h.length >> 8)});
        out.writeBytes(h);
        out.writeBytes(new byte[dataBytes]);
        return out.toByteArray();
    }

    private static NpyFormatException refused(String header) {
        return assertThrows(NpyFormatException.class,
                () -> NpyArray.read(new ByteArrayInputStream(file(header, 64)), "h.npy"));
    }

    @Test
    void readsNumPysOwnHeaders() throws Exception {
        NpyArray a = NpyArray.read(new ByteArrayInputStream(
                file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24)), "a.npy");
        assertEquals("<f4", a.dtype());
        assertArrayEquals(new int[] {2, 3}, a.shape());
        NpyArray b = NpyArray.read(new ByteArrayInputStream(
                file("{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f8\"}", 32)), "b.npy");
        assertEquals("<f8", b.dtype());
        assertArrayEquals(new int[] {4}, b.shape());
        NpyArray scalar = NpyArray.read(new ByteArrayInputStream(
                file("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", 1)), "c.npy");
        assertEquals(0, scalar.shape().length);
    }

    @Test
    void refusesADuplicatedDescr() {
        NpyFormatException e = refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<f8'}");
        assertTrue(e.getMessage().contains("'descr' appears twice"), e.getMessage());
    }

    @Test
    void refusesASmuggledOrMissingKey() {
        NpyFormatException e = refused("{'fortran_order': False, 'shape': (2,), 'x': \"'descr': '<f4'\"}");
        assertTrue(e.getMessage().contains("exactly the keys"), e.getMessage());
        e = refused("{'descr': '<f4', 'fortran_order': False}");
        assertTrue(e.getMessage().contains("exactly the keys"), e.getMessage());
    }

    @Test
    void refusesMalformedLiterals() {
        for (String bad : new String[] {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk",
            "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", "{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,)}",
            "{'descr': '<f\\4', 'fortran_order': False, 'shape': (2,)}", "{'descr': 4, 'fortran_order': False, 'shape': (2,)}"}) {
            NpyFormatException e = refused(bad);
            assertTrue(e.getMessage().startsWith("h.npy: "), e.getMessage());
        }
    }
}
