package dev.starling.api.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import org.junit.jupiter.api.Test;

/** The token mask's ranges agree with its per-element predicate, and the rules hold on hand-checked cases. */
class TokenMaskTest {

    @Test
    void causalRuleIsAlignedBottomRight() {
        // Nq = 4, Nk = 6: row 0 reads keys 0..2, row 3 reads 0..5.
        assertEquals(3, TokenMask.causalKeyEnd(0, TokenMask.bottomRightShift(4, 6), 6));
        assertEquals(6, TokenMask.causalKeyEnd(3, TokenMask.bottomRightShift(4, 6), 6));
        // Nq = 6, Nk = 4: rows 0 and 1 read nothing, row 2 reads key 0.
        assertEquals(0, TokenMask.causalKeyEnd(0, TokenMask.bottomRightShift(6, 4), 4));
        assertEquals(0, TokenMask.causalKeyEnd(1, TokenMask.bottomRightShift(6, 4), 4));
        assertEquals(1, TokenMask.causalKeyEnd(2, TokenMask.bottomRightShift(6, 4), 4));
        // No overflow at the extremes.
        assertEquals(Integer.MAX_VALUE, TokenMask.causalKeyEnd(Integer.MAX_VALUE - 1, TokenMask.bottomRightShift(Integer.MAX_VALUE, Integer.MAX_VALUE), Integer.MAX_VALUE));
        assertEquals(0, TokenMask.causalKeyEnd(0, TokenMask.bottomRightShift(Integer.MAX_VALUE, 1), 1));
    }

    @Test
    void rangesAgreeWithThePredicateOnEveryPair() {
        for (String pattern : new String[] {"bigbird(block=4, window=3, global=1, random=2)", "causal(window(block=3))",
            "dense(block=5)", "strided(block=2, stride=3)"}) {
            for (boolean causal : new boolean[] {false, true}) {
                AttentionProblem p = AttentionProblem.builder().batch(2).heads(2).queryLength(23).keyLength(17).headDim(3)
                        .causal(causal).keyLengths(17, 9).queryLengths(20, 23).build();
                BlockLayout layout = Patterns.parse(pattern).layout(23, 17, 2, causal);
                TokenMask mask = TokenMask.of(p, layout);
                long pairs = 0;
                for (int b = 0; b < 2; b++) {
                    for (int h = 0; h < 2; h++) {
                        for (int i = 0; i < 23; i++) {
                            int qb = i / layout.queryBlock();
                            for (int j = 0; j < 17; j++) {
                                int kb = j / layout.keyBlock();
                                boolean inRange = layout.allowed(h, qb, kb) && i < mask.validQueryEnd(b, qb)
                                        && j < mask.keyEnd(b, i, kb);
                                assertEquals(inRange, mask.allowed(b, h, i, j), pattern + " " + b + h + i + j);
                                if (inRange) {
                                    pairs++;
                                    assertTrue(j < mask.blockKeyEnd(b, qb, kb));
                                }
                            }
                        }
                    }
                }
                assertEquals(pairs, mask.allowedPairs(), pattern);
            }
        }
    }

    @Test
    void knownCases() {
        AttentionProblem p = AttentionProblem.builder().heads(1).queryLength(4).keyLength(6).headDim(2).causal(true)
                .keyLengths(5).build();
        TokenMask mask = TokenMask.of(p, Patterns.parse("dense(block=2)").layout(4, 6, 1, true));
        assertTrue(mask.causal());
        assertTrue(mask.allowed(0, 0, 0, 2));
        assertFalse(mask.allowed(0, 0, 0, 3));
        assertTrue(mask.allowed(0, 0, 3, 4));
        assertFalse(mask.allowed(0, 0, 3, 5), "padded key");
        assertEquals(3 + 4 + 5 + 5, mask.allowedPairs());
        assertEquals(2.0 * 4 * 17, mask.usefulFlops());
        assertEquals(6, mask.keyEnd(2));
        assertEquals(1, mask.lseIndex(0, 0, 1));
    }

    @Test
    void hugeBlocksNeitherOverflowNorLeaveRowsUncovered() {
        AttentionProblem p = AttentionProblem.builder().heads(1).length(100).headDim(1).build();
        BlockLayout layout = Patterns.parse("dense(block=2147483647)").layout(100, 100, 1);
        TokenMask mask = TokenMask.of(p, layout);
        assertEquals(0, mask.queryBegin(0));
        assertEquals(100, mask.queryEnd(0));
        assertEquals(100, mask.keyEnd(0, 99, 0));
        assertEquals(100L * 100, mask.allowedPairs());
    }

    @Test
    void refusesALayoutForOtherLengths() {
        AttentionProblem p = AttentionProblem.builder().heads(1).length(64).headDim(8).build();
        BlockLayout other = Patterns.parse("dense(block=16)").layout(32, 32, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TokenMask.of(p, other));
        assertTrue(e.getMessage().contains("Nq=32"), e.getMessage());
    }
}
