package dev.starling.api.pattern;

/**
 * {@code fixed(block=64, local=4, global=1)}: the Sparse Transformer "fixed" pattern at block
 * level. Key blocks form chunks of {@code local} blocks; query block {@code i} sees every block of
 * its own chunk ({@code i / local}) plus the last {@code global} blocks of every chunk.
 */
public final class FixedPattern extends BlockPattern {
    private final int local;
    private final int global;

    /**
     * @param block block size in tokens
     * @param local chunk length in blocks, {@code >= 1}
     * @param global summary blocks at the end of each chunk, {@code 0..local}
     */
    public FixedPattern(int block, int local, int global) {
        super(block);
        this.local = requireAtLeast("local", local, 1);
        this.global = requireAtLeast("global", global, 0);
        if (global > local) {
            throw new IllegalArgumentException("global (" + global + ") must not exceed local (" + local + ")");
        }
    }

    @Override
    protected boolean perHead() {
        return false;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        long chunkStart = (long) (qb / local) * local;
        row.addRange(chunkStart, chunkStart + local);
        for (long start = 0; start < grid.keyBlocks(); start += local) {
            row.addRange(start + local - global, start + local);
        }
    }

    @Override
    public String text() {
        return "fixed(block=" + blockSize() + ", local=" + local + ", global=" + global + ")";
    }
}
