package dev.starling.api;

import java.util.Arrays;
import java.util.Objects;

/**
 * A four-dimensional float32 tensor on the Java heap: {@code batch × heads × length × dim}
 * stored in a flat {@code float[]} in the given {@link TensorLayout}. Every factory and the
 * constructor take the dimensions in this logical order, whatever the memory layout.
 *
 * <p>The tensor does not copy its array; it is a view. Backends never modify the arrays of
 * input tensors and write every element of output tensors.
 *
 * @param data the values, exactly {@code batch·heads·length·dim} of them
 * @param layout the memory order of {@code data}
 * @param batch {@code B}
 * @param heads {@code H}
 * @param length {@code N}, the sequence length
 * @param dim {@code D}, the feature dimension per head
 */
public record Tensor(float[] data, TensorLayout layout, int batch, int heads, int length, int dim) {

    /** Checks that the array length matches the shape. */
    public Tensor {
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(layout, "layout");
        if (batch < 0 || heads < 0 || length < 0 || dim < 0) {
            throw new IllegalArgumentException("negative tensor dimension in " + describe(layout, batch, heads, length, dim));
        }
        long expected;
        try {
            expected = Math.multiplyExact(Math.multiplyExact((long) batch, heads), Math.multiplyExact((long) length, dim));
        } catch (ArithmeticException e) {
            expected = -1;
        }
        if (data.length != expected) {
            throw new IllegalArgumentException("tensor " + describe(layout, batch, heads, length, dim)
                    + " needs " + (expected < 0 ? "more than 2^63" : String.valueOf(expected)) + " floats but its array has "
                    + data.length);
        }
    }

    /**
     * A tensor over {@code data} in the given memory layout. Like every factory here, it takes the
     * dimensions in logical order {@code (batch, heads, length, dim)} whatever the layout; only the
     * layout says how {@code data} is ordered ({@code BHSD}: {@code [B, H, N, D]}, {@code BSHD}:
     * {@code [B, N, H, D]}, what a projection produces).
     *
     * @param layout the memory order of {@code data}
     * @param data the values, {@code B·H·N·D} of them. Not copied.
     * @param batch {@code B}
     * @param heads {@code H}
     * @param length {@code N}
     * @param dim {@code D}
     * @return the view
     */
    public static Tensor of(TensorLayout layout, float[] data, int batch, int heads, int length, int dim) {
        return new Tensor(data, layout, batch, heads, length, dim);
    }

    /**
     * A {@code [B, H, N, D]} tensor over {@code data}: {@code of(TensorLayout.BHSD, data, batch, heads, length, dim)}.
     *
     * @return the view
     */
    public static Tensor bhsd(float[] data, int batch, int heads, int length, int dim) {
        return new Tensor(data, TensorLayout.BHSD, batch, heads, length, dim);
    }

    /**
     * A zero-filled tensor; dimensions in logical order {@code (batch, heads, length, dim)}, as every factory.
     *
     * @return a new tensor owning a new array
     */
    public static Tensor zeros(TensorLayout layout, int batch, int heads, int length, int dim) {
        return new Tensor(new float[Math.multiplyExact(Math.multiplyExact(batch, heads), Math.multiplyExact(length, dim))],
                layout, batch, heads, length, dim);
    }

    /** @return offset in {@link #data()} of element {@code (b, h, n, 0)} */
    public int offset(int b, int h, int n) {
        return (int) layout.rowOffset(b, h, n, heads, length, dim);
    }

    /** @return element {@code (b, h, n, d)} */
    public float get(int b, int h, int n, int d) {
        return data[offset(b, h, n) + d];
    }

    /** @return distance in floats between consecutive sequence positions of one head */
    public int rowStride() {
        return layout.rowStride(heads, dim);
    }

    /** @return the shape in memory order, e.g. {@code [1, 8, 4096, 64]} for BHSD */
    public int[] shape() {
        return layout == TensorLayout.BHSD ? new int[] {batch, heads, length, dim} : new int[] {batch, length, heads, dim};
    }

    /** @return the same values in the other layout (a copy) or this tensor when it already has that layout */
    public Tensor toLayout(TensorLayout target) {
        if (target == layout) {
            return this;
        }
        Tensor out = zeros(target, batch, heads, length, dim);
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int n = 0; n < length; n++) {
                    System.arraycopy(data, offset(b, h, n), out.data, out.offset(b, h, n), dim);
                }
            }
        }
        return out;
    }

    /** @return a deep copy */
    public Tensor copy() {
        return new Tensor(data.clone(), layout, batch, heads, length, dim);
    }

    /** @return shape and layout, e.g. {@code [1, 8, 4096, 64] (BHSD)} */
    public String describe() {
        return describe(layout, batch, heads, length, dim);
    }

    static String describe(TensorLayout layout, int batch, int heads, int length, int dim) {
        int[] shape = layout == TensorLayout.BHSD ? new int[] {batch, heads, length, dim} : new int[] {batch, length, heads, dim};
        return Arrays.toString(shape) + " (" + layout + ")";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && t.layout == layout && t.batch == batch && t.heads == heads
                && t.length == length && t.dim == dim && Arrays.equals(t.data, data);
    }

    @Override
    public int hashCode() {
        return Objects.hash(layout, batch, heads, length, dim, Arrays.hashCode(data));
    }

    @Override
    public String toString() {
        return "Tensor" + describe();
    }
}
