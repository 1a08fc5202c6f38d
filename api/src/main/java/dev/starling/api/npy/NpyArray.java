package dev.starling.api.npy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A NumPy {@code .npy} array (format versions 1.0 to 3.0) held in memory: dtype, shape and the raw
 * C-order little-endian data. Starling reads {@code float32}, {@code float64}, {@code uint8} and
 * {@code bool} arrays and writes {@code float32} and {@code uint8}. Fortran-order arrays,
 * big-endian data, other dtypes, truncated and corrupt files are refused with a
 * {@link NpyFormatException} naming the file and the problem.
 *
 * @param dtype the NumPy type string, e.g. {@code "<f4"}
 * @param shape the dimensions
 * @param data raw element bytes, {@code product(shape) · itemsize} of them
 */
public record NpyArray(String dtype, int[] shape, byte[] data) {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final long MAX_BYTES = Integer.MAX_VALUE - 64;

    /** @return number of elements, the product of the shape */
    public long elements() {
        long n = 1;
        for (int s : shape) {
            n *= s;
        }
        return n;
    }

    /** @return whether the dtype is float64 */
    public boolean isFloat64() {
        return dtype.equals("<f8");
    }

    /**
     * Reads a file.
     *
     * @param file the {@code .npy} file
     * @return the array
     * @throws NpyFormatException if the file is not a readable {@code .npy} array
     * @throws IOException if it cannot be read at all
     */
    public static NpyArray read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NpyFormatException(file + (Files.isDirectory(file) ? ": is a directory"
                    : Files.exists(file) ? ": not a regular file" : ": no such file"));
        }
        try (InputStream in = Files.newInputStream(file)) {
            return read(in, file.toString());
        }
    }

    /**
     * Reads an array from a stream.
     *
     * @param in the stream, positioned at the magic string. Read to the end of the array.
     * @param name the name used in error messages
     * @return the array
     * @throws IOException if the stream is not a readable {@code .npy} array
     */
    public static NpyArray read(InputStream in, String name) throws IOException {
        Header header = readHeader(in, name);
        long bytes = header.dataBytes();
        byte[] data = in.readNBytes((int) bytes);
        if (data.length < bytes) {
            throw new NpyFormatException(name + ": truncated data: shape " + Arrays.toString(header.shape()) + " of "
                    + header.dtype() + " needs " + bytes + " bytes but the file holds " + data.length);
        }
        return new NpyArray(header.dtype(), header.shape(), data);
    }

    /**
     * What precedes the data of a {@code .npy} file: its dtype, shape and where the data starts, read
     * without the data, so that a part of a large array can be read from a known offset (element
     * {@code e} of the C-order data starts at byte {@code dataOffset + e·itemSize}).
     *
     * @param dtype the NumPy type string, one Starling reads ({@code <f4}, {@code <f8}, {@code <i4}, {@code |u1}, {@code |b1})
     * @param shape the dimensions
     * @param dataOffset bytes from the start of the file to the first element
     */
    public record Header(String dtype, int[] shape, long dataOffset) {

        /** Copies the shape. */
        public Header {
            shape = shape.clone();
        }

        /** @return bytes per element */
        public int itemSize() {
            return switch (dtype) {
                case "<f4", "<i4" -> 4;
                case "<f8" -> 8;
                case "<f2", "<u2" -> 2;
                default -> 1;
            };
        }

        /** @return number of elements, the product of the shape */
        public long elements() {
            long n = 1;
            for (int s : shape) {
                n *= s;
            }
            return n;
        }

        /** @return bytes of data after the header, {@code elements() · itemSize()} */
        public long dataBytes() {
            return elements() * itemSize();
        }

        /** @return a copy of the dimensions */
        @Override
        public int[] shape() {
            return shape.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Header h && h.dtype.equals(dtype) && Arrays.equals(h.shape, shape)
                    && h.dataOffset == dataOffset;
        }

        @Override
        public int hashCode() {
            return dtype.hashCode() * 31 + Arrays.hashCode(shape) * 17 + Long.hashCode(dataOffset);
        }

        @Override
        public String toString() {
            return "Header[" + dtype + " " + Arrays.toString(shape) + " at byte " + dataOffset + "]";
        }
    }

    /**
     * Reads the header of a {@code .npy} array and checks it as {@link #read(InputStream, String)}
     * does (dtype, C order, size limit), leaving the stream at the first data byte.
     *
     * @param in the stream, positioned at the magic string. Read to the end of the header.
     * @param name the name used in error messages
     * @return the header
     * @throws IOException if the stream does not start with a readable {@code .npy} header
     */
    public static Header readHeader(InputStream in, String name) throws IOException {
        byte[] prefix = in.readNBytes(8);
        if (prefix.length < 8 || !Arrays.equals(Arrays.copyOf(prefix, 6), MAGIC)) {
            throw new NpyFormatException(name + ": not a .npy file (missing the \\x93NUMPY magic string)");
        }
        int major = prefix[6];
        int headerLength;
        int lengthBytes;
        if (major == 1) {
            lengthBytes = 2;
            byte[] len = in.readNBytes(2);
            if (len.length < 2) {
                throw new NpyFormatException(name + ": truncated header");
            }
            headerLength = (len[0] & 0xff) | (len[1] & 0xff) << 8;
        } else if (major == 2 || major == 3) {
            lengthBytes = 4;
            byte[] len = in.readNBytes(4);
            if (len.length < 4) {
                throw new NpyFormatException(name + ": truncated header");
            }
            headerLength = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getInt();
            if (headerLength < 0 || headerLength > 1 << 20) {
                throw new NpyFormatException(name + ": corrupt header length " + headerLength);
            }
        } else {
            throw new NpyFormatException(name + ": unsupported .npy format version " + major);
        }
        byte[] headerBytes = in.readNBytes(headerLength);
        if (headerBytes.length < headerLength) {
            throw new NpyFormatException(name + ": truncated header");
        }
        String header = new String(headerBytes, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        NpyHeader parsed = NpyHeader.parse(header, name);
        if (parsed.fortranOrder()) {
            throw new NpyFormatException(name + ": Fortran-order arrays are not supported; save with "
                    + "numpy.ascontiguousarray(a) first");
        }
        String dtype = parsed.descr();
        int itemSize = itemSize(dtype, name);
        int[] shape = parsed.shape();
        long count = 1;
        for (int s : shape) {
            count *= s;
            if (count * itemSize > MAX_BYTES) {
                throw new NpyFormatException(name + ": array of shape " + Arrays.toString(shape) + " is too large");
            }
        }
        return new Header(dtype, shape, 8L + lengthBytes + headerLength);
    }

    private static int itemSize(String dtype, String name) throws NpyFormatException {
        return switch (dtype) {
            case "<f4" -> 4;
            case "<f8" -> 8;
            case "<f2", "<u2" -> 2;
            case "<i4" -> 4;
            case "|u1", "<u1", "|b1" -> 1;
            default -> throw new NpyFormatException(name + ": dtype '" + dtype + "' is not supported (Starling reads "
                    + "little-endian float32 '<f4', float64 '<f8', float16 '<f2', bfloat16 bits as uint16 '<u2', "
                    + "and uint8/bool/int32 '<i4' for layouts)");
        };
    }

    /**
     * The data as float32; float64 data is rounded to nearest, float16 and bfloat16 widened exactly.
     * NaN and infinities stay what they are, but a finite float64 beyond the float32 range (it would become
     * {@code ±∞}) is refused.
     *
     * @return a new array of {@link #elements()} floats
     * @throws IllegalStateException if the dtype is not a float type
     * @throws IllegalArgumentException naming the first element (flat index and position in the shape) whose
     *         finite float64 value is beyond {@code ±Float.MAX_VALUE} once rounded
     */
    public float[] toFloats() {
        ByteBuffer buf = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[(int) elements()];
        switch (dtype) {
            case "<f4" -> buf.asFloatBuffer().get(out);
            case "<f2", "<u2" -> {
                dev.starling.api.ElementType type = elementType();
                short[] bits = toShorts();
                for (int i = 0; i < out.length; i++) {
                    out[i] = type.widen(bits[i]);
                }
            }
            case "<f8" -> {
                for (int i = 0; i < out.length; i++) {
                    double x = buf.getDouble(i * 8);
                    out[i] = (float) x;
                    if (Float.isInfinite(out[i]) && !Double.isInfinite(x)) {
                        throw new IllegalArgumentException("float64 element " + i + " " + position(i) + " is " + x
                                + ", beyond the float32 range (±" + Float.MAX_VALUE + "): it would become "
                                + out[i] + "; scale the data or give float32");
                    }
                }
            }
            default -> throw new IllegalStateException("dtype " + dtype + " is not a float type");
        }
        return out;
    }

    /** @return flat index {@code i} as its position in the shape, e.g. {@code [0, 1, 5, 3]} */
    private String position(long i) {
        long[] at = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            at[d] = shape[d] == 0 ? 0 : i % shape[d];
            i = shape[d] == 0 ? 0 : i / shape[d];
        }
        return Arrays.toString(at);
    }

    /**
     * The element type of a tensor stored in this array: {@code <f4} is FP32, {@code <f2} is FP16, and
     * {@code <u2} holds bfloat16 bit patterns (NumPy has no bfloat16 dtype; Starling reads and writes bf16
     * as {@code uint16} and names the type wherever it reports a file).
     *
     * @return the type, or {@code null} for float64 and the mask dtypes
     */
    public dev.starling.api.ElementType elementType() {
        return switch (dtype) {
            case "<f4" -> dev.starling.api.ElementType.FP32;
            case "<f2" -> dev.starling.api.ElementType.FP16;
            case "<u2" -> dev.starling.api.ElementType.BF16;
            default -> null;
        };
    }

    /**
     * The data as 16-bit patterns: the IEEE half bits of {@code <f2}, the bfloat16 bits of {@code <u2}.
     *
     * @return a new array of {@link #elements()} shorts
     * @throws IllegalStateException if the dtype is not {@code <f2} or {@code <u2}
     */
    public short[] toShorts() {
        if (!dtype.equals("<f2") && !dtype.equals("<u2")) {
            throw new IllegalStateException("dtype " + dtype + " is not float16 '<f2' or bfloat16 bits '<u2'");
        }
        short[] out = new short[(int) elements()];
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(out);
        return out;
    }

    /**
     * A 16-bit array: float16 as {@code <f2}, bfloat16 bits as {@code <u2}.
     *
     * @param type {@link dev.starling.api.ElementType#FP16} or {@link dev.starling.api.ElementType#BF16}
     * @param bits C-order bit patterns. Copied.
     * @param shape the dimensions; their product must equal {@code bits.length}
     * @return the array
     * @throws IllegalArgumentException for FP32 or a count that does not match the shape
     */
    public static NpyArray ofShorts(dev.starling.api.ElementType type, short[] bits, int... shape) {
        if (type == null || !type.isHalf()) {
            throw new IllegalArgumentException("ofShorts takes FP16 or BF16, got " + type);
        }
        checkCount(bits.length, shape);
        ByteBuffer buf = ByteBuffer.allocate(bits.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        buf.asShortBuffer().put(bits);
        return new NpyArray(type.npyDescr(), shape.clone(), buf.array());
    }

    /**
     * The data as bytes for a mask: bool or uint8 as stored.
     *
     * @return a copy of the data
     * @throws IllegalArgumentException if the dtype is not bool or uint8
     */
    public byte[] toMaskBytes() {
        if (!dtype.equals("|u1") && !dtype.equals("<u1") && !dtype.equals("|b1")) {
            throw new IllegalArgumentException("a block mask must be bool or uint8, not " + dtype);
        }
        return data.clone();
    }

    /**
     * The data as integers for a block mask with counts: bool, uint8 (0 .. 255) or int32 as stored.
     *
     * @return a new array of {@link #elements()} values
     * @throws IllegalArgumentException if the dtype is not bool, uint8 or int32
     */
    public int[] toMaskCounts() {
        int[] out = new int[(int) elements()];
        if (dtype.equals("<i4")) {
            ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
            return out;
        }
        byte[] bytes = toMaskBytes();
        for (int i = 0; i < out.length; i++) {
            out[i] = bytes[i] & 0xff;
        }
        return out;
    }

    /**
     * A float32 array.
     *
     * @param values C-order values. Copied.
     * @param shape the dimensions; their product must equal {@code values.length}
     * @return the array
     */
    public static NpyArray ofFloats(float[] values, int... shape) {
        checkCount(values.length, shape);
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(values);
        return new NpyArray("<f4", shape.clone(), buf.array());
    }

    /**
     * A uint8 array.
     *
     * @param values C-order values. Copied.
     * @param shape the dimensions
     * @return the array
     */
    public static NpyArray ofBytes(byte[] values, int... shape) {
        checkCount(values.length, shape);
        return new NpyArray("|u1", shape.clone(), values.clone());
    }

    /**
     * An int32 array (a block mask with counts above 255).
     *
     * @param values C-order values. Copied.
     * @param shape the dimensions
     * @return the array
     */
    public static NpyArray ofInts(int[] values, int... shape) {
        checkCount(values.length, shape);
        ByteBuffer buf = ByteBuffer.allocate(Math.multiplyExact(values.length, 4)).order(ByteOrder.LITTLE_ENDIAN);
        buf.asIntBuffer().put(values);
        return new NpyArray("<i4", shape.clone(), buf.array());
    }

    private static void checkCount(int count, int[] shape) {
        long n = 1;
        for (int s : shape) {
            n *= s;
        }
        if (n != count) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n + " elements but "
                    + count + " values were given");
        }
    }

    /**
     * Writes the array as a version 1.0 {@code .npy} file.
     *
     * @param file the destination, replaced if it exists
     * @throws IOException if writing fails
     */
    public void write(Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            write(out);
        }
    }

    /**
     * Writes the array in version 1.0 format.
     *
     * @param out the stream. Not closed.
     * @throws IOException if writing fails
     */
    public void write(OutputStream out) throws IOException {
        out.write(headerBytes(dtype, shape));
        out.write(data);
    }

    /**
     * The version 1.0 header of an array, padded to a multiple of 64 bytes: what precedes the data
     * in {@link #write(OutputStream)}, so that a large array can be streamed out piece by piece.
     *
     * @param dtype the NumPy type string, e.g. {@code "<f4"}
     * @param shape the dimensions
     * @return the header bytes
     */
    public static byte[] headerBytes(String dtype, int... shape) {
        StringBuilder shapeText = new StringBuilder("(");
        for (int s : shape) {
            shapeText.append(s).append(", ");
        }
        if (shape.length > 1) {
            shapeText.setLength(shapeText.length() - 2);
        } else if (shape.length == 1) {
            shapeText.setLength(shapeText.length() - 1);
        }
        shapeText.append(')');
        String dict = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': " + shapeText + ", }";
        int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;
        int pad = (64 - unpadded % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        head.write(MAGIC, 0, MAGIC.length);
        head.write(1);
        head.write(0);
        head.write(header.length() & 0xff);
        head.write(header.length() >> 8 & 0xff);
        byte[] text = header.getBytes(StandardCharsets.ISO_8859_1);
        head.write(text, 0, text.length);
        return head.toByteArray();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NpyArray a && a.dtype.equals(dtype) && Arrays.equals(a.shape, shape) && Arrays.equals(a.data, data);
    }

    @Override
    public int hashCode() {
        return dtype.hashCode() * 31 + Arrays.hashCode(shape) * 17 + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "NpyArray[" + dtype + " " + Arrays.toString(shape) + "]";
    }
}
