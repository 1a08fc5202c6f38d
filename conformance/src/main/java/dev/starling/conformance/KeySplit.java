package dev.starling.conformance;

import dev.starling.api.pattern.BlockLayout;
import java.util.Arrays;
import java.util.Random;

/**
 * A layout cut into disjoint key-block sets, as rule 21 uses it: each allowed block of each row
 * (of each head layout) goes to one of {@code parts} sub-layouts at random, so the sub-layouts are
 * disjoint and together hold exactly the layout's blocks. A row may be empty in some parts. The
 * sub-layouts keep the layout's lengths, block sizes, head layouts, causal flag and block counts.
 */
final class KeySplit {

    private KeySplit() {
    }

    /**
     * Splits a layout.
     *
     * @param layout the layout. Not modified.
     * @param parts number of sub-layouts, {@code >= 1}
     * @param rnd draws the part of each block. Modified (its state advances).
     * @return {@code parts} sub-layouts built with {@link BlockLayout#ofCsr}
     */
    static BlockLayout[] split(BlockLayout layout, int parts, Random rnd) {
        int heads = layout.heads();
        int rows = layout.queryBlocks();
        int[][][] rowStart = new int[parts][heads][rows + 1];
        int[][][] keyBlocks = new int[parts][heads][];
        int[][][] counts = new int[parts][heads][];
        for (int hl = 0; hl < heads; hl++) {
            int[] starts = layout.rowStart(hl);
            int[] blocks = layout.keyBlockIndices(hl);
            int[] weights = layout.counts(hl);
            int[][] cols = new int[parts][blocks.length];
            int[][] cnts = new int[parts][blocks.length];
            int[] count = new int[parts];
            for (int r = 0; r < rows; r++) {
                for (int p = starts[r]; p < starts[r + 1]; p++) {
                    int part = rnd.nextInt(parts);
                    cnts[part][count[part]] = weights[p];
                    cols[part][count[part]++] = blocks[p];
                }
                for (int part = 0; part < parts; part++) {
                    rowStart[part][hl][r + 1] = count[part];
                }
            }
            for (int part = 0; part < parts; part++) {
                keyBlocks[part][hl] = Arrays.copyOf(cols[part], count[part]);
                counts[part][hl] = Arrays.copyOf(cnts[part], count[part]);
            }
        }
        BlockLayout[] out = new BlockLayout[parts];
        for (int part = 0; part < parts; part++) {
            out[part] = BlockLayout.ofCsr(layout.queryLength(), layout.keyLength(), layout.queryBlock(), layout.keyBlock(),
                    layout.causal(), rowStart[part], keyBlocks[part], counts[part], 0);
        }
        return out;
    }
}
