package dev.starling.api.pattern;

import java.util.Arrays;

/**
 * Assembles the CSR arrays of a layout row by row, for {@link BlockPattern} and
 * {@link UnionPattern}, and refuses a layout larger than {@link BlockLayout#MAX_ENTRIES} before it
 * grows past it: the message says how far it got and how big the whole would be.
 */
final class CsrBuilder {
    private final int queryBlocks;
    private final String what;
    private final int[][] rowStart;
    private final int[][] columns;
    private final long limit = BlockLayout.entryLimit();
    private long total;

    /**
     * @param headLayouts number of head layouts
     * @param queryBlocks query blocks per head layout
     * @param what the pattern, for messages
     */
    CsrBuilder(int headLayouts, int queryBlocks, String what) {
        this.queryBlocks = queryBlocks;
        this.what = what;
        long rows = (long) headLayouts * (queryBlocks + 1L);
        if (rows > limit) {
            throw new IllegalArgumentException(what + ": a layout of " + headLayouts + " head layout(s) x " + queryBlocks
                    + " query blocks needs " + rows + " row offsets, more than the limit of " + limit
                    + "; use a larger block");
        }
        this.rowStart = new int[headLayouts][];
        this.columns = new int[headLayouts][];
    }

    /** Row source: fills the sorted, distinct key blocks of {@code (head layout, query block)}. */
    interface Rows {
        int[] row(int headLayout, int qb);
    }

    /**
     * Builds every head layout from {@code rows}.
     *
     * @param rows gives each row's sorted, distinct key blocks
     * @return this, with the arrays filled
     */
    CsrBuilder build(Rows rows) {
        for (int h = 0; h < rowStart.length; h++) {
            int[] starts = new int[queryBlocks + 1];
            int[] cols = new int[(int) Math.min(1 << 16, Math.max(16L, queryBlocks * 8L))];
            int nnz = 0;
            for (int qb = 0; qb < queryBlocks; qb++) {
                int[] sorted = rows.row(h, qb);
                long after = total + nnz + sorted.length;
                if (after > limit) {
                    double rowsDone = (double) h * queryBlocks + qb + 1;
                    double estimate = after / rowsDone * ((double) rowStart.length * queryBlocks);
                    throw new IllegalArgumentException(String.format(java.util.Locale.ROOT,
                            "%s: the layout would hold about %.3g allowed blocks (%d after %d of %d rows), more than "
                                    + "the limit of %d; use a larger block or a sparser pattern",
                            what, estimate, after, (long) rowsDone, (long) rowStart.length * queryBlocks,
                            limit));
                }
                if (nnz + sorted.length > cols.length) {
                    cols = Arrays.copyOf(cols, (int) Math.min(limit,
                            Math.max(2L * cols.length, (long) nnz + sorted.length)));
                }
                System.arraycopy(sorted, 0, cols, nnz, sorted.length);
                nnz += sorted.length;
                starts[qb + 1] = nnz;
            }
            rowStart[h] = starts;
            columns[h] = Arrays.copyOf(cols, nnz);
            total += nnz;
        }
        return this;
    }

    int[][] rowStart() {
        return rowStart;
    }

    int[][] columns() {
        return columns;
    }
}
