package dev.starling.api.npy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class NpyArrayTest {

    private static byte[] bytes(NpyArray a) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        a.write(out);
        return out.toByteArray();
    }

    @Test
    void roundTripsFloatsAndBytes() throws Exception {
        float[] v = {1.5f, -2f, 3.25f, 0f, 7f, 8f};
        byte[] raw = bytes(NpyArray.ofFloats(v, 2, 3));
        assertEquals(0, (raw.length - 6) % 16 == 0 ? 0 : 0);
        assertEquals('\n', raw[10 + ((raw[8] & 0xff) | (raw[9] & 0xff) << 8) - 1], "header ends with a newline");
        assertEquals(0, (10 + ((raw[8] & 0xff) | (raw[9] & 0xff) << 8)) % 64, "data is 64-byte aligned");
        NpyArray back = NpyArray.read(new ByteArrayInputStream(raw), "x");
        assertArrayEquals(new int[] {2, 3}, back.shape());
        assertArrayEquals(v, back.toFloats());
        NpyArray b = NpyArray.read(new ByteArrayInputStream(bytes(NpyArray.ofBytes(new byte[] {1, 0, 1}, 3))), "y");
        assertArrayEquals(new int[] {3}, b.shape());
        assertArrayEquals(new byte[] {1, 0, 1}, b.toMaskBytes());
    }

    @Test
    void refusesWhatItCannotRead() throws Exception {
        byte[] good = bytes(NpyArray.ofFloats(new float[] {1, 2, 3, 4}, 4));
        byte[] truncated = java.util.Arrays.copyOf(good, good.length - 3);
        NpyFormatException e = assertThrows(NpyFormatException.class,
                () -> NpyArray.read(new ByteArrayInputStream(truncated), "t.npy"));
        assertTrue(e.getMessage().contains("truncated data"), e.getMessage());

        String header = new String(good, StandardCharsets.ISO_8859_1);
        byte[] fortran = header.replace("'fortran_order': False", "'fortran_order': True ").getBytes(StandardCharsets.ISO_8859_1);
        e = assertThrows(NpyFormatException.class, () -> NpyArray.read(new ByteArrayInputStream(fortran), "f.npy"));
        assertTrue(e.getMessage().contains("Fortran"), e.getMessage());

        // int32 is read (block masks with counts); int16 is not.
        byte[] int16 = header.replace("'<f4'", "'<i2'").getBytes(StandardCharsets.ISO_8859_1);
        e = assertThrows(NpyFormatException.class, () -> NpyArray.read(new ByteArrayInputStream(int16), "i.npy"));
        assertTrue(e.getMessage().contains("'<i2' is not supported"), e.getMessage());

        e = assertThrows(NpyFormatException.class,
                () -> NpyArray.read(new ByteArrayInputStream("hello world".getBytes(StandardCharsets.US_ASCII)), "h"));
        assertTrue(e.getMessage().contains("not a .npy file"), e.getMessage());
    }

    @Test
    void theHeaderAloneSaysWhereEachElementIs() throws Exception {
        float[] v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        byte[] raw = bytes(NpyArray.ofFloats(v, 2, 3, 2));
        ByteArrayInputStream in = new ByteArrayInputStream(raw);
        NpyArray.Header h = NpyArray.readHeader(in, "x");
        assertEquals("<f4", h.dtype());
        assertArrayEquals(new int[] {2, 3, 2}, h.shape());
        assertEquals(raw.length - 48, h.dataOffset());
        assertEquals(raw.length - h.dataOffset(), in.available(), "the stream is left at the first data byte");
        assertEquals(48, h.dataBytes());
        // Element (1, 2, 0) = index 10 sits at dataOffset + 10 * 4.
        int at = (int) h.dataOffset() + 10 * 4;
        assertEquals(11f, java.nio.ByteBuffer.wrap(raw, at, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getFloat());
        assertArrayEquals(java.util.Arrays.copyOf(raw, (int) h.dataOffset()), NpyArray.headerBytes("<f4", 2, 3, 2));
    }
}
