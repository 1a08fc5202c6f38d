package dev.starling.api.pattern;

/**
 * {@code random(block=64, blocks=3, seed=0)}: per head and query block, {@code r} distinct key
 * blocks drawn by {@link RandomBlocks} (all of them if fewer remain; with causal, only blocks at
 * or before the row).
 */
public final class RandomPattern extends BlockPattern {
    private static final int[] NONE = new int[0];
    private final int blocks;
    private final long seed;

    /**
     * @param block block size in tokens
     * @param blocks {@code r}, random blocks per row, {@code >= 0}
     * @param seed the seed of the draw
     */
    public RandomPattern(int block, int blocks, long seed) {
        super(block);
        this.blocks = requireAtLeast("blocks", blocks, 0);
        this.seed = seed;
    }

    @Override
    protected boolean perHead() {
        return true;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        RandomBlocks.forRow(seed, head, qb).draw(blocks, grid.lastKeyBlock(qb) + 1, NONE, 0, row);
    }

    @Override
    public String text() {
        return "random(block=" + blockSize() + ", blocks=" + blocks + ", seed=" + seed + ")";
    }
}
