package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Block multiplicity in the layout: lists with repeats become sorted entries with counts. */
class BlockLayoutCountsTest {
    @Test
    void listsWithRepeatsBecomeCounts() {
        int[][][] lists = {{{0, 1, 0, 0}, {3, 1, 1}}};
        BlockLayout l = BlockLayout.ofLists(128, 256, 64, 64, false, lists, 0);
        assertTrue(l.hasCounts());
        assertArrayEquals(new int[] {0, 2, 4}, l.rowStart(0));
        assertArrayEquals(new int[] {0, 1, 1, 3}, l.keyBlockIndices(0));
        assertArrayEquals(new int[] {3, 1, 2, 1}, l.counts(0));
        assertEquals(3, l.count(5, 0));
        assertTrue(l.toString().contains("with counts"), l.toString());
    }

    @Test
    void countsOfOneAreTheSetLayout() {
        int[][] rs = {{0, 1, 2}};
        int[][] kb = {{0, 1}};
        BlockLayout plain = BlockLayout.ofCsr(128, 128, 64, 64, false, rs, kb);
        BlockLayout ones = BlockLayout.ofCsr(128, 128, 64, 64, false, rs, kb, new int[][] {{1, 1}}, 0);
        assertFalse(ones.hasCounts());
        assertEquals(plain, ones);
        assertEquals(plain.hashCode(), ones.hashCode());
        assertArrayEquals(new int[] {1, 1}, plain.counts(0));
        BlockLayout twice = BlockLayout.ofCsr(128, 128, 64, 64, false, rs, kb, new int[][] {{1, 2}}, 0);
        assertFalse(plain.equals(twice));
    }

    @Test
    void badCountsAreRefusedNamingTheEntry() {
        int[][] rs = {{0, 1, 2}};
        int[][] kb = {{0, 1}};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BlockLayout.ofCsr(128, 128, 64, 64, false, rs, kb, new int[][] {{1, 0}}, 0));
        assertTrue(e.getMessage().contains("entry 1") && e.getMessage().contains(">= 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BlockLayout.ofCsr(128, 128, 64, 64, false, rs, kb, new int[][] {{1}}, 0));
        assertTrue(e.getMessage().contains("counts has 1 entries"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BlockLayout.ofLists(128, 128, 64, 64, false, new int[][][] {{{0}, {2}}}, 0));
        assertTrue(e.getMessage().contains("key block 2"), e.getMessage());
    }
}
