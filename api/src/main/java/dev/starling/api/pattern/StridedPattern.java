package dev.starling.api.pattern;

/**
 * {@code strided(block=64, stride=8)}: the Sparse Transformer "strided" pattern at block level.
 * Query block {@code i} sees key blocks {@code j} with {@code |i − j| < stride} (the local band)
 * and every {@code j} with {@code (i − j) mod stride == 0}.
 */
public final class StridedPattern extends BlockPattern {
    private final int stride;

    /**
     * @param block block size in tokens
     * @param stride stride in blocks, {@code >= 1}
     */
    public StridedPattern(int block, int stride) {
        super(block);
        this.stride = requireAtLeast("stride", stride, 1);
    }

    @Override
    protected boolean perHead() {
        return false;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        row.addRange((long) qb - stride + 1, (long) qb + stride);
        for (long j = qb % stride; j < grid.keyBlocks(); j += stride) {
            row.add((int) j);
        }
    }

    @Override
    public String text() {
        return "strided(block=" + blockSize() + ", stride=" + stride + ")";
    }
}
