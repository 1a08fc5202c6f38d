package dev.starling.spark;

import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.npy.NpyFormatException;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A float32 {@code [B, H, N, D]} {@code .npy} file on any Hadoop file system ({@code file:},
 * {@code hdfs:}, {@code s3a:} …), read a range of sequence positions at a time with positioned
 * reads: a task holds only the rows it asked for, never the whole array.
 */
final class NpyTensorFile implements Closeable {
    /** Bytes converted per positioned read, so a large range never needs a second full-size buffer. */
    private static final int READ_CHUNK = 1 << 20;

    private final String name;
    private final FSDataInputStream in;
    private final NpyArray.Header header;
    private final int batch;
    private final int heads;
    private final int length;
    private final int dim;

    private NpyTensorFile(String name, FSDataInputStream in, NpyArray.Header header) {
        this.name = name;
        this.in = in;
        this.header = header;
        int[] shape = header.shape();
        this.batch = shape[0];
        this.heads = shape[1];
        this.length = shape[2];
        this.dim = shape[3];
    }

    /**
     * Opens a file and checks its header: float32, C order, four dimensions.
     *
     * @param conf the Hadoop configuration that resolves the path's file system
     * @param path the file
     * @param role what the file holds, for messages ("q of sequence chr1")
     * @return the open file; the caller closes it
     * @throws IOException if the file cannot be read or is not a float32 4-D array
     */
    static NpyTensorFile open(Configuration conf, String path, String role) throws IOException {
        Path p = new Path(path);
        FileSystem fs = p.getFileSystem(conf);
        FSDataInputStream in = fs.open(p);
        try {
            String name = role + " (" + path + ")";
            NpyArray.Header header = header(in, name);
            return new NpyTensorFile(name, in, header);
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
    }

    /**
     * Reads only the header of a file and checks it as {@link #open} does.
     *
     * @param conf the Hadoop configuration
     * @param path the file
     * @param role what the file holds, for messages
     * @return its header
     * @throws IOException if the file cannot be read, is not a float32 4-D array or is shorter than its header says
     */
    static NpyArray.Header readHeader(Configuration conf, String path, String role) throws IOException {
        Path p = new Path(path);
        FileSystem fs = p.getFileSystem(conf);
        NpyArray.Header header;
        long length;
        try (InputStream in = fs.open(p)) {
            header = header(in, role + " (" + path + ")");
            length = fs.getFileStatus(p).getLen();
        } catch (java.io.FileNotFoundException e) {
            throw new java.io.FileNotFoundException(role + ": no such file " + path);
        }
        // Checked here on the driver, so a short file is bad input before any task runs, not a task failure.
        if (length < header.dataOffset() + header.dataBytes()) {
            throw new NpyFormatException(role + " (" + path + "): truncated data: shape " + Arrays.toString(header.shape())
                    + " needs " + (header.dataOffset() + header.dataBytes()) + " bytes, the file has " + length);
        }
        return header;
    }

    private static NpyArray.Header header(InputStream in, String name) throws IOException {
        NpyArray.Header header = NpyArray.readHeader(in, name);
        if (!header.dtype().equals("<f4")) {
            throw new NpyFormatException(name + " is " + header.dtype() + "; the Spark job reads float32 ('<f4') only: "
                    + "save it with a.astype(numpy.float32)");
        }
        if (header.shape().length != 4) {
            throw new NpyFormatException(name + " has shape " + Arrays.toString(header.shape())
                    + "; expected four dimensions [B, H, N, D]");
        }
        return header;
    }

    /** @return {@code [B, H, N, D]} */
    int[] shape() {
        return header.shape();
    }

    /**
     * Reads sequence positions {@code [first, first + count)} of every (batch, head).
     *
     * @param first the first position
     * @param count how many
     * @return a new {@code [B, H, count, D]} BHSD tensor
     * @throws IOException if reading fails or the file is shorter than its header says
     */
    Tensor readRows(int first, int count) throws IOException {
        if (first < 0 || count < 0 || (long) first + count > length) {
            throw new IllegalArgumentException(name + ": rows [" + first + ", " + ((long) first + count)
                    + ") are outside [0, " + length + ")");
        }
        Tensor t = Tensor.zeros(TensorLayout.BHSD, batch, heads, count, dim);
        byte[] buf = new byte[(int) Math.min(READ_CHUNK, Math.max(4L, 4L * count * dim))];
        float[] dst = t.data();
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                long position = header.dataOffset() + 4L * (((long) b * heads + h) * length + first) * dim;
                int at = t.offset(b, h, 0);
                long remaining = 4L * count * dim;
                while (remaining > 0) {
                    int n = (int) Math.min(buf.length, remaining);
                    try {
                        in.readFully(position, buf, 0, n);
                    } catch (java.io.EOFException e) {
                        throw new NpyFormatException(name + ": truncated data: shape " + Arrays.toString(header.shape())
                                + " needs " + (header.dataOffset() + header.dataBytes()) + " bytes");
                    }
                    ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(dst, at, n / 4);
                    at += n / 4;
                    position += n;
                    remaining -= n;
                }
            }
        }
        return t;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
