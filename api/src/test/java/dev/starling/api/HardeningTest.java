package dev.starling.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.pattern.RandomBlocks;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Sizes and values that used to overflow, allocate without bound or be silently misread (issue 12). */
class HardeningTest {

    @Test
    void deepNestingIsRefusedWithAPosition() {
        for (String open : new String[] {"union(", "causal("}) {
            String text = open.repeat(5000) + "dense()" + ")".repeat(5000);
            dev.starling.api.pattern.PatternSyntaxException e = assertThrows(
                    dev.starling.api.pattern.PatternSyntaxException.class, () -> Patterns.parse(text));
            assertTrue(e.getMessage().contains("nest more than 64 levels"), e.getMessage());
            assertEquals(64 * open.length(), e.position());
        }
        Patterns.parse("causal(".repeat(63) + "dense()" + ")".repeat(63));
    }

    @Test
    void dimensionProductsThatOverflowALongAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AttentionProblem.builder()
                .batch(2147418113).heads(1718039348).length(20).headDim(1).build());
        assertTrue(e.getMessage().contains("more than 2^63"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Tensor.of(TensorLayout.BHSD, new float[20], 2147418113, 1718039348, 20, 1));
        assertTrue(e.getMessage().contains("more than 2^63"), e.getMessage());
    }

    @Test
    void scaleMustBeFiniteAndNonZero() {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionProblem.builder().heads(1).length(4).headDim(4).scale(bad).build());
            assertTrue(e.getMessage().startsWith("scale must be"), e.getMessage());
        }
        assertEquals(-2f, AttentionProblem.builder().heads(1).length(4).headDim(4).scale(-2f).build().scale());
    }

    @Test
    void anUnsetScaleFollowsANewHeadDim() {
        AttentionProblem p = AttentionProblem.builder().heads(1).length(4).headDim(16).build();
        assertEquals(0.25f, p.scale());
        assertEquals(0.125f, p.toBuilder().headDim(64).build().scale());
        AttentionProblem set = p.toBuilder().scale(0.5f).build();
        assertEquals(0.5f, set.toBuilder().headDim(64).build().scale());
    }

    @Test
    void blockSizesNearTheIntLimitCoverEveryRow() {
        BlockLayout layout = Patterns.parse("dense(block=2147483647)").layout(100, 100, 1);
        assertEquals(1, layout.queryBlocks());
        assertEquals(1, layout.keyBlocks());
        assertEquals(1, layout.rowSize(0, 0));
        BlockLayout window = Patterns.parse("window(block=2147483000, blocks=3)").layout(5, 7, 1);
        assertEquals(1, window.rowSize(0, 0));
    }

    @Test
    void hugeStridesDoNotOverflow() {
        BlockLayout strided = Patterns.parse("strided(block=64, stride=2147483647)").layout(64 * 10, 64 * 10, 1);
        for (int qb = 0; qb < 10; qb++) {
            assertEquals(10, strided.rowSize(0, qb), "the band |i - j| < stride covers every block");
        }
        BlockLayout fixed = Patterns.parse("fixed(block=64, local=2147483647, global=1)").layout(64 * 5, 64 * 5, 1);
        assertEquals(5, fixed.rowSize(0, 4));
    }

    @Test
    void layoutsPastTheLimitAreRefusedBeforeTheyAreBuilt() {
        IllegalArgumentException e = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> assertThrows(
                IllegalArgumentException.class, () -> Patterns.parse("dense(block=1)").layout(100_000, 100_000, 1)));
        assertTrue(e.getMessage().contains("would hold about 1.00e+10 allowed blocks"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Patterns.parse("bigbird(block=1)").layout(Integer.MAX_VALUE, Integer.MAX_VALUE, 1));
        assertTrue(e.getMessage().contains("more than the limit"), e.getMessage());
        BlockLayout big = Patterns.parse("bigbird(block=64)").layout(1 << 20, 1 << 20, 1);
        e = assertThrows(IllegalArgumentException.class, () -> big.maskBytes(8));
        assertTrue(e.getMessage().contains("[8, 16384, 16384] would be 2147483648 bytes"), e.getMessage());
    }

    @Test
    void aRandomLayoutDrawnForOneHeadIsNotSharedByFour() {
        AttentionProblem four = AttentionProblem.builder().heads(4).length(256).headDim(8).build();
        BlockLayout oneHead = Patterns.parse("bigbird(block=32)").layout(256, 256, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> four.checkLayout(oneHead));
        assertTrue(e.getMessage().contains("drawn for 1 query head(s) but the problem has 4"), e.getMessage());
        four.checkLayout(Patterns.parse("window(block=32)").layout(256, 256, 1));
        four.checkLayout(Starling.layout(four, Patterns.parse("bigbird(block=32)")));
    }

    @Test
    void masksWithoutHeadsOrWithZeroBlocksAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BlockLayout.ofMask(8, 8, 0, 4, false, new boolean[][][] {{{true, true}}}));
        assertTrue(e.getMessage().contains("block sizes must be >= 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> BlockLayout.ofMask(8, 8, 4, 4, false, new boolean[0][][]));
        assertTrue(e.getMessage().contains("at least one head layout"), e.getMessage());
    }

    @Test
    void largeRandomDrawsAreLinearAndUnchanged() {
        // The draw with a set of taken indices equals Floyd's algorithm with a linear search.
        for (int trial = 0; trial < 200; trial++) {
            int m = 1 + trial * 7;
            int r = Math.max(1, m / 3);
            int[] got = draw(RandomBlocks.forRow(trial, trial % 3, trial), r, m);
            RandomBlocks naive = RandomBlocks.forRow(trial, trial % 3, trial);
            int[] want = new int[Math.min(r, m)];
            int count = 0;
            if (m <= r) {
                for (int t = 0; t < m; t++) {
                    want[count++] = t;
                }
            } else {
                for (int j = m - r; j < m; j++) {
                    int t = naive.nextInt(j + 1);
                    boolean seen = false;
                    for (int i = 0; i < count; i++) {
                        seen |= want[i] == t;
                    }
                    want[count++] = seen ? j : t;
                }
            }
            Arrays.sort(want);
            assertEquals(Arrays.toString(want), Arrays.toString(got));
        }
        assertTimeoutPreemptively(Duration.ofSeconds(60),
                () -> Patterns.parse("random(block=1, blocks=4000)").layout(8001, 8001, 1));
    }

    private static int[] draw(RandomBlocks random, int r, int m) {
        int[] out = new int[Math.min(r, m)];
        dev.starling.api.pattern.BlockRowAccess.drawInto(random, r, m, out);
        Arrays.sort(out);
        return out;
    }
}
