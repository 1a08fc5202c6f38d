package dev.starling.api.pattern;

/**
 * {@code global(block=64, first=1, last=1)}: the first {@code first} and last {@code last} blocks
 * are global: as query blocks they see every key block, as key blocks every query block sees them.
 */
public final class GlobalPattern extends BlockPattern {
    private final int first;
    private final int last;

    /**
     * @param block block size in tokens
     * @param first number of leading global blocks, {@code >= 0}
     * @param last number of trailing global blocks, {@code >= 0}
     */
    public GlobalPattern(int block, int first, int last) {
        super(block);
        this.first = requireAtLeast("first", first, 0);
        this.last = requireAtLeast("last", last, 0);
    }

    /** Adds the global rows' full rows and everyone's global columns: shared with BigBird. */
    static boolean addGlobals(BlockGrid grid, int qb, int first, int last, BlockRow row) {
        if (qb < first || qb >= (long) grid.queryBlocks() - last) {
            row.addRange(0, grid.keyBlocks());
            return true;
        }
        row.addRange(0, first);
        row.addRange((long) grid.keyBlocks() - last, grid.keyBlocks());
        return false;
    }

    @Override
    protected boolean perHead() {
        return false;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        addGlobals(grid, qb, first, last, row);
    }

    @Override
    public String text() {
        return "global(block=" + blockSize() + ", first=" + first + ", last=" + last + ")";
    }
}
