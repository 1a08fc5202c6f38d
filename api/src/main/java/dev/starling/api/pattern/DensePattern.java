package dev.starling.api.pattern;

/** {@code dense(block=64)}: every query block sees every key block (full attention, block-tiled). */
public final class DensePattern extends BlockPattern {

    /** @param block block size in tokens */
    public DensePattern(int block) {
        super(block);
    }

    @Override
    protected boolean perHead() {
        return false;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        row.addRange(0, grid.keyBlocks());
    }

    @Override
    public String text() {
        return "dense(block=" + blockSize() + ")";
    }
}
