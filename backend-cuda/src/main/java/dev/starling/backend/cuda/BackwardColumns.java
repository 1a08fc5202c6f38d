package dev.starling.backend.cuda;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.LayoutColumns;

/**
 * {@link LayoutColumns} packed for {@code starling_bwd_dkdv}, the way {@code WorkPlan} packs the
 * rows: the query blocks of every column of every head layout concatenated
 * ({@link #packQueryBlocks}), and per head layout {@code hl} and key block {@code kb} the index of
 * the column's first query block at {@code hl·(keyBlocks + 1) + kb}, its end at the next index
 * ({@link #packStarts}). Columns keep {@link LayoutColumns}' ascending order, which is the order the
 * kernel sums a key block's gradients in.
 */
final class BackwardColumns {
    private BackwardColumns() {
    }

    /**
     * @param columns the layout's columns
     * @return {@code heads · (keyBlocks + 1)} indices into {@link #packQueryBlocks}, per head layout ascending
     */
    static int[] packStarts(LayoutColumns columns) {
        BlockLayout layout = columns.layout();
        int nkb = layout.keyBlocks();
        int[] starts = new int[Math.multiplyExact(layout.heads(), nkb + 1)];
        int base = 0;
        for (int hl = 0; hl < layout.heads(); hl++) {
            // Query head hl reads head layout hl (or the shared one, hl = 0, when there is one).
            for (int kb = 0; kb < nkb; kb++) {
                starts[hl * (nkb + 1) + kb] = base + columns.columnBegin(hl, kb);
            }
            base += nkb == 0 ? 0 : columns.columnEnd(hl, nkb - 1);
            starts[hl * (nkb + 1) + nkb] = base;
        }
        return starts;
    }

    /**
     * @param columns the layout's columns
     * @return every head layout's columns, concatenated: the query blocks reading each key block, ascending
     */
    static int[] packQueryBlocks(LayoutColumns columns) {
        BlockLayout layout = columns.layout();
        int nkb = layout.keyBlocks();
        long total = 0;
        for (int hl = 0; hl < layout.heads() && nkb > 0; hl++) {
            total += columns.columnEnd(hl, nkb - 1);
        }
        int[] packed = new int[Math.toIntExact(total)];
        int at = 0;
        for (int hl = 0; hl < layout.heads() && nkb > 0; hl++) {
            for (int p = 0, end = columns.columnEnd(hl, nkb - 1); p < end; p++) {
                packed[at++] = columns.queryBlock(hl, p);
            }
        }
        return packed;
    }
}
