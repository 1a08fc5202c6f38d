package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.plan.KeyShards;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.TokenMask;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every layout derived from one with block counts keeps them: key shards, columns, unions, explicit and causal layouts. */
class BlockCountsDerivedLayoutsTest {
    /** 4 x 4 blocks of 8: (1, 0) counted 3 times, (3, 2) twice, (3, 3) 300 times. */
    private static final int[][][] COUNTS = {{
        {1, 0, 0, 0},
        {3, 1, 0, 0},
        {1, 1, 1, 0},
        {0, 1, 2, 300}}};

    private static BlockLayout counted() {
        return ExplicitPattern.withCounts(8, COUNTS).layout(32, 32, 1);
    }

    private static int countAt(BlockLayout l, int h, int qb, int kb) {
        int p = l.entry(h, qb, kb);
        return p < 0 ? 0 : l.count(h, p);
    }

    @Test
    void explicitLayoutsCarryCountsAndMasksWriteThem() {
        BlockLayout l = counted();
        assertTrue(l.hasCounts());
        assertEquals(300, l.maxCount());
        assertArrayEquals(new int[] {1, 3, 1, 1, 1, 1, 1, 2, 300}, l.counts(0));
        assertEquals(300, l.countMask(1)[15]);
        assertThrows(IllegalArgumentException.class, () -> l.maskBytes(1), "300 does not fit uint8");
        assertEquals(Math.log(3), TokenMask.of(l, 1).logWeight(0, l.entry(0, 1, 0)), 0);
        assertEquals(0.0, TokenMask.of(l, 1).logWeight(0, l.entry(0, 1, 1)), 0);
        assertEquals(Double.NEGATIVE_INFINITY, TokenMask.of(l, 1).logWeight(0, 0, 0, 9));
        assertEquals(Math.log(2), TokenMask.of(l, 1).logWeight(0, 0, 30, 17), 0);
        // Causal drops blocks above the diagonal, and keeps the counts of the others.
        BlockLayout causal = ExplicitPattern.withCounts(8, COUNTS).layout(32, 32, 1, true);
        assertEquals(300, countAt(causal, 0, 3, 3));
        assertEquals(3, countAt(causal, 0, 1, 0));
        // Counts of 1 everywhere are the layout without counts.
        assertEquals(ExplicitPattern.of(8, new boolean[][] {{true}}).layout(8, 8, 1),
                ExplicitPattern.withCounts(8, new int[][][] {{{1}}}).layout(8, 8, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ExplicitPattern.withCounts(8, new int[][][] {{{1, -1}}}));
        assertTrue(e.getMessage().contains("key block 1: a count must be >= 0"), e.getMessage());
    }

    @Test
    void keyShardsAndColumnsKeepTheCounts() {
        BlockLayout l = counted();
        AttentionProblem p = AttentionProblem.builder().heads(1).length(32).headDim(4).build();
        KeyShards shards = KeyShards.at(p, l, 2);
        BlockLayout second = shards.layout(1);
        assertEquals(2, countAt(second, 0, 3, 0));
        assertEquals(300, countAt(second, 0, 3, 1));
        assertEquals(3, countAt(shards.layout(0), 0, 1, 0));
        assertFalse(KeyShards.at(p, l, 3).layout(0).allowed(0, 3, 3));
        LayoutColumns cols = LayoutColumns.of(l);
        // Column 0: query blocks 0, 1, 2 with counts 1, 3, 1.
        assertEquals(Math.log(3), cols.logWeight(0, cols.columnBegin(0, 0) + 1), 0);
        assertEquals(0.0, cols.logWeight(0, cols.columnBegin(0, 0)), 0);
    }

    @Test
    void aUnionTakesTheLargestCountOfItsParts() {
        PatternSpec explicit = ExplicitPattern.withCounts(8, COUNTS);
        BlockLayout u = new UnionPattern(List.of(explicit, Patterns.parse("window(block=8, blocks=3)"))).layout(32, 32, 1);
        assertEquals(3, countAt(u, 0, 1, 0));
        assertEquals(1, countAt(u, 0, 0, 1), "a window block no counted part has");
        assertEquals(300, countAt(u, 0, 3, 3));
        BlockLayout plain = new UnionPattern(List.of(Patterns.parse("window(block=8, blocks=3)"),
                Patterns.parse("global(block=8, first=1, last=0)"))).layout(32, 32, 1);
        assertFalse(plain.hasCounts());
    }
}
