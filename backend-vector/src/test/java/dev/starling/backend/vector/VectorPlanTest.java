package dev.starling.backend.vector;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.WorkPlan;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The claiming order: every unit of every head once, BigBird's global rows first, then head by head. */
class VectorPlanTest {

    @Test
    void orderCoversEveryUnitOnceLongUnitsFirst() {
        int heads = 3;
        BlockLayout layout = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=1)").layout(640, 640, heads);
        WorkPlan work = WorkPlan.of(layout, Integer.MAX_VALUE);
        int batch = 2;
        int[][] order = VectorPlan.order(work, layout, batch * heads, heads);
        Set<Long> seen = new HashSet<>();
        int expected = 0;
        for (int bh = 0; bh < batch * heads; bh++) {
            expected += work.units(layout.headIndex(bh % heads)).size();
        }
        assertEquals(expected, order[0].length);
        for (int x = 0; x < order[0].length; x++) {
            assertTrue(seen.add((long) order[0][x] << 32 | order[1][x]), "item " + x + " repeated");
        }
        // The first 2 · B · Hq items are the global rows (every key block); the rest are shorter.
        int longest = layout.keyBlocks();
        for (int x = 0; x < order[0].length; x++) {
            int blocks = work.units(layout.headIndex(order[0][x] % heads)).get(order[1][x]).blocks();
            if (x < 2 * batch * heads) {
                assertEquals(longest, blocks, "item " + x);
            } else {
                assertTrue(blocks < longest, "item " + x);
            }
        }
        // Then head by head in query-block order.
        int x = 2 * batch * heads;
        assertEquals(0, order[0][x]);
        assertEquals(batch * heads - 1, order[0][order[0].length - 1]);
    }

    @Test
    void rowsAreSplitOnlyWhenOneRowOutweighsAThreadsShare() {
        BlockLayout layout = Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=0)").layout(16384, 16384, 8);
        assertEquals(Integer.MAX_VALUE, VectorPlan.maxBlocksPerUnit(layout, 8, 8, 1));
        assertTrue(VectorPlan.maxBlocksPerUnit(layout, 8, 8, 2) >= layout.keyBlocks(), "8 heads on 2 threads need no split");
        assertTrue(VectorPlan.maxBlocksPerUnit(layout, 1, 1, 16) < layout.keyBlocks(), "1 head on 16 threads splits");
    }
}
