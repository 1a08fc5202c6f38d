package dev.starling.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.BlockLayout;
import org.junit.jupiter.api.Test;

/** A shard task's row cut of a layout keeps the block counts of its rows. */
class ShardRowsCountsTest {

    @Test
    void rowCutsKeepCounts() {
        BlockLayout l = BlockLayout.ofCsr(32, 32, 8, 8, false, new int[][] {{0, 1, 3, 4, 6}},
                new int[][] {{0, 0, 1, 2, 2, 3}}, new int[][] {{1, 3, 1, 1, 2, 300}}, 0);
        BlockLayout rows = ShardPartials.rowsOf(l, 1, 4, 24);
        assertTrue(rows.hasCounts());
        assertArrayEquals(new int[] {3, 1, 1, 2, 300}, rows.counts(0));
        assertArrayEquals(new int[] {0, 0, 1, 2, 2, 3}, new int[] {0, rows.keyBlock(0, 0), rows.keyBlock(0, 1),
            rows.keyBlock(0, 2), rows.keyBlock(0, 3), rows.keyBlock(0, 4)});
    }
}
