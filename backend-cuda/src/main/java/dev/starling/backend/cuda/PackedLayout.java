package dev.starling.backend.cuda;

import dev.starling.api.pattern.BlockLayout;

/**
 * A {@link BlockLayout} packed for the kernels: all head layouts' CSR arrays in two int arrays.
 * {@code rowStart[hl · (queryBlocks + 1) + qb]} is the absolute index into {@code cols} of head
 * layout {@code hl}'s query block {@code qb}; {@code headLayouts} is 1 when every head shares one.
 *
 * @param rowStart packed row offsets
 * @param cols packed key block indices
 * @param headLayouts number of head layouts
 */
public record PackedLayout(int[] rowStart, int[] cols, int headLayouts) {

    /**
     * Packs a layout.
     *
     * @param layout the layout. Not modified.
     * @return the packed arrays
     */
    public static PackedLayout of(BlockLayout layout) {
        int layouts = layout.heads();
        int nqb = layout.queryBlocks();
        long total = 0;
        for (int hl = 0; hl < layouts; hl++) {
            total += layout.nnz(hl);
        }
        if (total > Integer.MAX_VALUE - 8) {
            throw new UnsupportedOperationException("layout has " + total + " blocks, more than the kernels index");
        }
        int[] rowStart = new int[layouts * (nqb + 1)];
        int[] cols = new int[(int) total];
        int base = 0;
        for (int hl = 0; hl < layouts; hl++) {
            int[] rs = layout.rowStart(hl);
            int[] kb = layout.keyBlockIndices(hl);
            for (int r = 0; r <= nqb; r++) {
                rowStart[hl * (nqb + 1) + r] = base + rs[r];
            }
            System.arraycopy(kb, 0, cols, base, kb.length);
            base += kb.length;
        }
        return new PackedLayout(rowStart, cols, layouts);
    }
}
