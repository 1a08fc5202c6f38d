package dev.starling.api.pattern;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * {@code longformer(block=64, window=3, global=[0])}: a sliding window of {@code w} blocks plus
 * global rows and columns at the given block indices. A negative index counts from the end
 * ({@code -1} is the last block); indices past the sequence are ignored.
 */
public final class LongformerPattern extends BlockPattern {
    private final int window;
    private final int[] global;

    /**
     * @param block block size in tokens
     * @param window window width in blocks, odd
     * @param global global block indices. Not modified.
     */
    public LongformerPattern(int block, int window, int[] global) {
        super(block);
        this.window = WindowPattern.requireOdd("window", window);
        this.global = global.clone();
    }

    private static int resolve(int index, int blocks) {
        return index < 0 ? blocks + index : index;
    }

    @Override
    protected boolean perHead() {
        return false;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        for (int g : global) {
            if (resolve(g, grid.queryBlocks()) == qb) {
                row.addRange(0, grid.keyBlocks());
                return;
            }
        }
        row.addRange((long) qb - window / 2, (long) qb + window / 2 + 1);
        for (int g : global) {
            row.add(resolve(g, grid.keyBlocks()));
        }
    }

    @Override
    public String text() {
        return "longformer(block=" + blockSize() + ", window=" + window + ", global="
                + Arrays.stream(global).mapToObj(Integer::toString).collect(Collectors.joining(", ", "[", "]")) + ")";
    }
}
