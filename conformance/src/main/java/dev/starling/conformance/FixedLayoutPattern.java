package dev.starling.conformance;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;

/**
 * A pattern that is one given layout, for cases whose layout no pattern text makes: CSR arrays
 * built in code with {@link BlockLayout#ofCsr}, where the query and key block sizes may differ.
 * It fits only the lengths the layout was built for; asked for the causal layout, it is the same
 * blocks with the causal flag set (the token mask then applies the causal rule, also inside blocks
 * wholly above the diagonal, which are left in on purpose).
 *
 * @param layout the layout
 * @param description what the layout is, shown as the pattern's text (it does not parse)
 */
record FixedLayoutPattern(BlockLayout layout, String description) implements PatternSpec {

    @Override
    public int blockSize() {
        return layout.queryBlock();
    }

    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        if (queryLength != layout.queryLength() || keyLength != layout.keyLength()) {
            throw new IllegalArgumentException(description + " was built for Nq=" + layout.queryLength() + ", Nk="
                    + layout.keyLength() + ", not Nq=" + queryLength + ", Nk=" + keyLength);
        }
        if (causal == layout.causal()) {
            return layout;
        }
        int[][] rowStart = new int[layout.heads()][];
        int[][] keyBlocks = new int[layout.heads()][];
        int[][] counts = new int[layout.heads()][];
        for (int h = 0; h < layout.heads(); h++) {
            rowStart[h] = layout.rowStart(h);
            keyBlocks[h] = layout.keyBlockIndices(h);
            counts[h] = layout.counts(h);
        }
        return BlockLayout.ofCsr(queryLength, keyLength, layout.queryBlock(), layout.keyBlock(), causal, rowStart,
                keyBlocks, counts, layout.drawnForHeads());
    }

    @Override
    public String text() {
        return description;
    }
}
