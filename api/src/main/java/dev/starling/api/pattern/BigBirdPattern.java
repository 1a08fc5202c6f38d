package dev.starling.api.pattern;

/**
 * {@code bigbird(block=64, window=3, global=2, random=3, seed=0)}: BigBird ITC (DESIGN section 3).
 *
 * <p>With {@code n} key blocks and {@code g} global blocks, the globals are the first
 * {@code ceil(g/2)} and the last {@code floor(g/2)} blocks ({@code g = 2}: blocks 0 and
 * {@code n − 1}; {@code g = 1}: block 0). A global query block sees every key block; every
 * query block sees every global key block. Every other query block {@code i} sees its window
 * {@code i − w/2 .. i + w/2}, the globals, and {@code r} random key blocks drawn by
 * {@link RandomBlocks} from the blocks not already in its window or globals (all of them if fewer
 * than {@code r} remain; with causal, only from blocks at or before {@code i}). Each key block
 * is counted once.
 */
public final class BigBirdPattern extends BlockPattern {
    private final int window;
    private final int global;
    private final int random;
    private final long seed;

    /**
     * @param block block size in tokens
     * @param window window width {@code w} in blocks, odd
     * @param global number of global blocks {@code g >= 0}
     * @param random random blocks per row {@code r >= 0}
     * @param seed seed of the random draw
     */
    public BigBirdPattern(int block, int window, int global, int random, long seed) {
        super(block);
        this.window = WindowPattern.requireOdd("window", window);
        this.global = requireAtLeast("global", global, 0);
        this.random = requireAtLeast("random", random, 0);
        this.seed = seed;
    }

    /** @return the default BigBird: block 64, window 3, global 2, random 3, seed 0 */
    public static BigBirdPattern defaults() {
        return new BigBirdPattern(64, 3, 2, 3, 0);
    }

    @Override
    protected boolean perHead() {
        return random > 0;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        int first = (global + 1) / 2;
        int last = global / 2;
        if (GlobalPattern.addGlobals(grid, qb, first, last, row)) {
            return;
        }
        row.addRange((long) qb - window / 2, (long) qb + window / 2 + 1);
        int[] excluded = row.sortedUpTo(Integer.MAX_VALUE);
        RandomBlocks.forRow(seed, head, qb).draw(random, grid.lastKeyBlock(qb) + 1, excluded, excluded.length, row);
    }

    @Override
    public String text() {
        return "bigbird(block=" + blockSize() + ", window=" + window + ", global=" + global + ", random=" + random
                + ", seed=" + seed + ")";
    }
}
