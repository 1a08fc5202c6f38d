package dev.starling.api.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Units cover every allowed block once, long rows are split with consecutive slots, longest first, packed for a GPU. */
class WorkPlanTest {

    @Test
    void unitsCoverEveryBlockOnceLongestFirst() {
        BlockLayout layout = Patterns.parse("bigbird(block=8, window=3, global=2, random=2)").layout(8 * 40, 8 * 40, 3);
        for (int max : new int[] {1, 3, 7, 16, Integer.MAX_VALUE}) {
            WorkPlan plan = WorkPlan.of(layout, max);
            assertEquals(3, plan.headLayouts());
            for (int hl = 0; hl < 3; hl++) {
                Set<Integer> seen = new HashSet<>();
                List<WorkPlan.Unit> units = plan.units(hl);
                for (int u = 0; u < units.size(); u++) {
                    WorkPlan.Unit unit = units.get(u);
                    assertTrue(unit.blocks() <= max && unit.blocks() >= 0);
                    if (u > 0) {
                        assertTrue(units.get(u - 1).blocks() >= unit.blocks(), "longest first");
                    }
                    assertTrue(unit.begin() >= layout.rowBegin(hl, unit.queryBlock())
                            && unit.end() <= layout.rowEnd(hl, unit.queryBlock()));
                    for (int p = unit.begin(); p < unit.end(); p++) {
                        assertTrue(seen.add(p), "position " + p + " twice");
                    }
                    boolean split = layout.rowSize(hl, unit.queryBlock()) > max;
                    assertEquals(split, unit.slot() >= 0);
                }
                assertEquals(layout.nnz(hl), seen.size());
                int slots = 0;
                for (WorkPlan.Split s : plan.splits(hl)) {
                    assertEquals(slots, s.firstSlot(), "slots are consecutive");
                    assertEquals((layout.rowSize(hl, s.queryBlock()) + max - 1) / max, s.parts());
                    slots += s.parts();
                }
                assertEquals(slots, plan.slots(hl));
            }
        }
    }

    @Test
    void packsForAGpu() {
        BlockLayout layout = Patterns.parse("bigbird(block=4, window=3, global=1, random=1)").layout(4 * 12, 4 * 12, 2);
        WorkPlan plan = WorkPlan.of(layout, 4);
        int[] units = plan.packUnits();
        int[] keys = plan.packKeyBlocks();
        int[] splits = plan.packSplits();
        assertEquals(2 * plan.unitsPerLayout() * WorkPlan.UNIT_INTS, units.length);
        assertEquals(layout.nnz(0) + layout.nnz(1), keys.length);
        int base = layout.nnz(0);
        for (int hl = 0; hl < 2; hl++) {
            for (int u = 0; u < plan.unitsPerLayout(); u++) {
                int at = (hl * plan.unitsPerLayout() + u) * WorkPlan.UNIT_INTS;
                if (u >= plan.units(hl).size()) {
                    assertEquals(-1, units[at]);
                    assertEquals(units[at + 1], units[at + 2], "padding has no work");
                    continue;
                }
                WorkPlan.Unit unit = plan.units(hl).get(u);
                assertEquals(unit.queryBlock(), units[at]);
                assertEquals(unit.slot(), units[at + 3]);
                for (int p = unit.begin(); p < unit.end(); p++) {
                    assertEquals(layout.keyBlock(hl, p), keys[(hl == 0 ? 0 : base) + p]);
                }
                assertEquals((hl == 0 ? 0 : base) + unit.begin(), units[at + 1]);
            }
            for (int s = 0; s < plan.splits(hl).size(); s++) {
                int at = (hl * plan.splitsPerLayout() + s) * WorkPlan.SPLIT_INTS;
                assertEquals(plan.splits(hl).get(s).queryBlock(), splits[at]);
                assertEquals(plan.splits(hl).get(s).parts(), splits[at + 2]);
            }
        }
    }

    @Test
    void refusesNonPositiveUnits() {
        BlockLayout layout = Patterns.parse("dense(block=4)").layout(8, 8, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WorkPlan.of(layout, 0));
        assertTrue(e.getMessage().contains("maxBlocksPerUnit"), e.getMessage());
    }
}
