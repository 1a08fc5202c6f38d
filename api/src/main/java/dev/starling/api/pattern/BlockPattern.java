package dev.starling.api.pattern;

/**
 * Base class for patterns defined row by row: for each head and query block, {@link #row} adds
 * the allowed key blocks to a {@link BlockRow}. This class does the rest: the causal cut (blocks
 * past {@link BlockGrid#lastKeyBlock} are dropped), sorting, de-duplication and the CSR arrays.
 * Rows are built one at a time, so building takes O(nnz) memory.
 */
public abstract class BlockPattern implements PatternSpec {
    private final int block;

    /** @param block block size in tokens, {@code >= 1} */
    protected BlockPattern(int block) {
        if (block < 1) {
            throw new IllegalArgumentException("block must be >= 1, got " + block);
        }
        this.block = block;
    }

    @Override
    public final int blockSize() {
        return block;
    }

    /** @return whether rows depend on the head (random draws); {@code false} gives one shared layout */
    protected abstract boolean perHead();

    /**
     * Adds the key blocks query block {@code qb} of head {@code head} may see.
     *
     * @param grid the geometry (lengths, block counts, causal)
     * @param head the query head (always 0 when {@link #perHead()} is false)
     * @param qb the query block
     * @param row where to add key blocks. Modified.
     */
    protected abstract void row(BlockGrid grid, int head, int qb, BlockRow row);

    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be >= 1, got " + heads);
        }
        BlockGrid grid = BlockGrid.of(queryLength, keyLength, block, causal);
        int layouts = perHead() ? heads : 1;
        BlockRow row = new BlockRow(grid.keyBlocks());
        CsrBuilder csr = new CsrBuilder(layouts, grid.queryBlocks(), text()).build((h, qb) -> {
            row.clear();
            row(grid, h, qb, row);
            return row.sortedUpTo(grid.lastKeyBlock(qb));
        });
        return BlockLayout.trusted(queryLength, keyLength, block, block, causal, perHead() ? heads : 0,
                csr.rowStart(), csr.columns());
    }

    @Override
    public String toString() {
        return text();
    }

    @Override
    public boolean equals(Object o) {
        return o != null && o.getClass() == getClass() && ((PatternSpec) o).text().equals(text());
    }

    @Override
    public int hashCode() {
        return text().hashCode();
    }

    static int requireAtLeast(String name, int value, int min) {
        if (value < min) {
            throw new IllegalArgumentException(name + " must be >= " + min + ", got " + value);
        }
        return value;
    }
}
