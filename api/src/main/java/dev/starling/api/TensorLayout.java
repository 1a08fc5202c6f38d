package dev.starling.api;

/**
 * Memory order of a four-dimensional attention tensor stored in a flat {@code float[]}.
 *
 * <p>Both orders keep the feature dimension {@code D} innermost and contiguous.
 */
public enum TensorLayout {
    /** {@code [batch, heads, sequence, dim]}: each head's sequence is contiguous. */
    BHSD,
    /** {@code [batch, sequence, heads, dim]}: what a linear projection of a sequence produces. */
    BSHD;

    /**
     * Flat index of element {@code (b, h, n, 0)}.
     *
     * @param b batch index
     * @param h head index
     * @param n sequence position
     * @param heads number of heads {@code H}
     * @param length sequence length {@code N}
     * @param dim feature dimension {@code D}
     * @return offset of the first feature of that row
     */
    public long rowOffset(int b, int h, int n, int heads, int length, int dim) {
        return switch (this) {
            case BHSD -> (((long) b * heads + h) * length + n) * dim;
            case BSHD -> (((long) b * length + n) * heads + h) * dim;
        };
    }

    /**
     * Distance in floats between row {@code n} and row {@code n + 1} of one head.
     *
     * @param heads number of heads {@code H}
     * @param dim feature dimension {@code D}
     * @return {@code D} for BHSD, {@code H·D} for BSHD
     */
    public int rowStride(int heads, int dim) {
        return this == BHSD ? dim : heads * dim;
    }
}
