package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** BigBird ITC exactly as DESIGN section 3 says: a golden layout and property checks. */
class BigBirdPatternTest {

    /** Pins the documented random draw: a change here breaks every saved layout. */
    @Test
    void goldenLayoutIsStable() {
        BlockLayout l = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=42)").layout(160, 160, 2);
        int[] rowStart = {0, 10, 16, 23, 30, 37, 44, 51, 58, 64, 74};
        assertArrayEquals(rowStart, l.rowStart(0));
        assertArrayEquals(rowStart, l.rowStart(1));
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 5, 7, 9, 0, 1, 2, 3, 5, 6, 9, 0, 1, 2, 3, 4, 6,
            9, 0, 1, 2, 3, 4, 5, 9, 0, 1, 4, 5, 6, 8, 9, 0, 3, 4, 5, 6, 7, 9, 0, 2, 4, 6, 7, 8, 9, 0, 2, 6, 7, 8, 9, 0, 1, 2,
            3, 4, 5, 6, 7, 8, 9}, l.keyBlockIndices(0));
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 5, 7, 9, 0, 1, 2, 3, 5, 7, 9, 0, 1, 2, 3, 4, 6,
            9, 0, 2, 3, 4, 5, 8, 9, 0, 4, 5, 6, 7, 8, 9, 0, 2, 5, 6, 7, 8, 9, 0, 3, 4, 6, 7, 8, 9, 0, 1, 4, 7, 8, 9, 0, 1, 2,
            3, 4, 5, 6, 7, 8, 9}, l.keyBlockIndices(1));
    }

    @Test
    void itcRulesHoldOverManyLengthsSeedsAndHeads() {
        for (int w : new int[] {1, 3, 5}) {
            for (int g : new int[] {0, 1, 2, 3}) {
                for (int r : new int[] {0, 1, 3}) {
                    for (long seed : new long[] {0, 1, 99}) {
                        for (int n = 1; n <= 700; n += 37) {
                            for (boolean causal : new boolean[] {false, true}) {
                                checkItc(n, n, 4, w, g, r, seed, causal);
                            }
                        }
                        checkItc(300, 500, 2, w, g, r, seed, false);
                        checkItc(500, 300, 2, w, g, r, seed, true);
                    }
                }
            }
        }
    }

    private static void checkItc(int nq, int nk, int heads, int w, int g, int r, long seed, boolean causal) {
        int block = 16;
        BigBirdPattern p = new BigBirdPattern(block, w, g, r, seed);
        BlockLayout l = p.layout(nq, nk, heads, causal);
        BlockGrid grid = BlockGrid.of(nq, nk, block, causal);
        String where = p.text() + " nq=" + nq + " nk=" + nk + " causal=" + causal;
        assertEquals(l, p.layout(nq, nk, heads, causal), "deterministic: " + where);
        int nkb = grid.keyBlocks();
        int nqb = grid.queryBlocks();
        int first = (g + 1) / 2;
        int last = g / 2;
        for (int h = 0; h < heads; h++) {
            for (int qb = 0; qb < nqb; qb++) {
                int limit = grid.lastKeyBlock(qb);
                Set<Integer> row = new HashSet<>();
                for (int i = l.rowBegin(h, qb); i < l.rowEnd(h, qb); i++) {
                    int kb = l.keyBlock(h, i);
                    assertTrue(kb <= limit, "causal cut " + where);
                    assertTrue(row.add(kb), "unique " + where);
                    if (i > l.rowBegin(h, qb)) {
                        assertTrue(kb > l.keyBlock(h, i - 1), "sorted " + where);
                    }
                }
                boolean globalRow = qb < first || qb >= nqb - last;
                if (globalRow) {
                    assertEquals(limit + 1, row.size(), "global row sees every key block " + where + " qb=" + qb);
                    continue;
                }
                Set<Integer> fixed = new HashSet<>();
                for (int kb = 0; kb < nkb; kb++) {
                    boolean inWindow = Math.abs(kb - qb) <= w / 2;
                    boolean globalColumn = kb < first || kb >= nkb - last;
                    if ((inWindow || globalColumn) && kb <= limit) {
                        fixed.add(kb);
                        assertTrue(row.contains(kb), "window/global column " + kb + " missing " + where + " qb=" + qb);
                    }
                }
                int candidates = (limit + 1) - fixed.size();
                assertEquals(fixed.size() + Math.min(r, candidates), row.size(),
                        "r distinct random blocks outside window and globals " + where + " qb=" + qb);
            }
        }
    }

    @Test
    void headsDrawDifferentRandomBlocks() {
        BlockLayout l = new BigBirdPattern(64, 3, 2, 3, 0).layout(64 * 64, 64 * 64, 4);
        assertNotEquals(java.util.Arrays.toString(l.keyBlockIndices(0)), java.util.Arrays.toString(l.keyBlockIndices(1)));
        assertNotEquals(java.util.Arrays.toString(l.keyBlockIndices(2)), java.util.Arrays.toString(l.keyBlockIndices(3)));
    }

    @Test
    void seedChangesTheDrawAndRandomZeroIsShared() {
        BlockLayout a = new BigBirdPattern(16, 3, 2, 3, 0).layout(800, 800, 2);
        BlockLayout b = new BigBirdPattern(16, 3, 2, 3, 1).layout(800, 800, 2);
        assertNotEquals(a, b);
        assertTrue(new BigBirdPattern(16, 3, 2, 0, 0).layout(800, 800, 8).isShared());
    }

    @Test
    void globalsFollowTheDocumentedSplit() {
        BlockLayout g1 = new BigBirdPattern(16, 1, 1, 0, 0).layout(160, 160, 1);
        assertEquals(10, g1.rowSize(0, 0), "g=1: block 0 is a global row");
        assertEquals(10, g1.rowSize(0, 9) + 8, "g=1: last block is not global");
        BlockLayout g2 = new BigBirdPattern(16, 1, 2, 0, 0).layout(160, 160, 1);
        assertEquals(10, g2.rowSize(0, 9), "g=2: the last block is a global row");
        assertTrue(g2.allowed(0, 5, 0) && g2.allowed(0, 5, 9) && g2.allowed(0, 5, 5));
        assertEquals(3, g2.rowSize(0, 5));
    }

    /** A million tokens: small and quick (DESIGN: O(nnz)). The timing itself is reported in the README. */
    @Test
    void millionTokenLayoutIsSmall() {
        BlockLayout l = BigBirdPattern.defaults().layout(1 << 20, 1 << 20, 1);
        assertTrue(l.memoryBytes() < 2_000_000, "layout takes " + l.memoryBytes() + " bytes");
        assertEquals(16_384, l.queryBlocks());
    }
}
