package dev.starling.api.plan;

import dev.starling.api.pattern.BlockLayout;

/**
 * A layout read by columns: for each head layout and key block, the query blocks that may read it,
 * ascending (the transpose of the CSR rows, i.e. CSC). The backward pass accumulates a key block's
 * gradients over exactly these query blocks, in this fixed order, so results do not depend on
 * threads; key-sharded attention uses it to find which query blocks a shard of keys serves.
 *
 * <p>Memory O(nnz); immutable.
 */
public final class LayoutColumns {
    private final int[][] columnStart;
    private final int[][] queryBlocks;
    /** Per head layout, the count of each column entry; {@code null} without counts. */
    private final int[][] counts;
    private final BlockLayout layout;

    private LayoutColumns(BlockLayout layout, int[][] columnStart, int[][] queryBlocks, int[][] counts) {
        this.layout = layout;
        this.columnStart = columnStart;
        this.queryBlocks = queryBlocks;
        this.counts = counts;
    }

    /**
     * Transposes every head layout of {@code layout}.
     *
     * @param layout the layout. Not modified.
     * @return the column view
     */
    public static LayoutColumns of(BlockLayout layout) {
        int heads = layout.heads();
        int nkb = layout.keyBlocks();
        int[][] starts = new int[heads][];
        int[][] rows = new int[heads][];
        int[][] counts = layout.hasCounts() ? new int[heads][] : null;
        for (int hl = 0; hl < heads; hl++) {
            int[] count = new int[nkb + 1];
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                for (int p = layout.rowBegin(hl, qb); p < layout.rowEnd(hl, qb); p++) {
                    count[layout.keyBlock(hl, p) + 1]++;
                }
            }
            for (int kb = 0; kb < nkb; kb++) {
                count[kb + 1] += count[kb];
            }
            int[] fill = count.clone();
            int[] qbs = new int[count[nkb]];
            int[] cs = counts == null ? null : new int[qbs.length];
            // Rows visited in ascending order, so every column comes out ascending.
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                for (int p = layout.rowBegin(hl, qb); p < layout.rowEnd(hl, qb); p++) {
                    int at = fill[layout.keyBlock(hl, p)]++;
                    qbs[at] = qb;
                    if (cs != null) {
                        cs[at] = layout.count(hl, p);
                    }
                }
            }
            if (counts != null) {
                counts[hl] = cs;
            }
            starts[hl] = count;
            rows[hl] = qbs;
        }
        return new LayoutColumns(layout, starts, rows, counts);
    }

    /** @return the layout transposed */
    public BlockLayout layout() {
        return layout;
    }

    /** @return index of the first query block of key block {@code kb}'s column for query head {@code h} */
    public int columnBegin(int h, int kb) {
        return columnStart[layout.headIndex(h)][kb];
    }

    /** @return one past the last index of key block {@code kb}'s column for query head {@code h} */
    public int columnEnd(int h, int kb) {
        return columnStart[layout.headIndex(h)][kb + 1];
    }

    /** @return the query block at column position {@code p} of query head {@code h} */
    public int queryBlock(int h, int p) {
        return queryBlocks[layout.headIndex(h)][p];
    }

    /**
     * @return the log-weight {@link TokenMask#logWeight(int) ln c} of the layout entry at column position
     *         {@code p} of query head {@code h} (0 without counts)
     */
    public double logWeight(int h, int p) {
        return counts == null ? 0.0 : TokenMask.logWeight(counts[layout.headIndex(h)][p]);
    }
}
