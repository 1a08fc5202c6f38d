package dev.starling.api.pattern;

/** Test access to {@link RandomBlocks#draw} with a fresh {@link BlockRow}. */
public final class BlockRowAccess {
    private BlockRowAccess() {
    }

    /** Draws {@code r} of {@code [0, m)} and copies the drawn blocks, in order added, into {@code out}. */
    public static void drawInto(RandomBlocks random, int r, int m, int[] out) {
        BlockRow row = new BlockRow(m);
        random.draw(r, m, new int[0], 0, row);
        int[] drawn = row.sortedUpTo(Integer.MAX_VALUE);
        System.arraycopy(drawn, 0, out, 0, drawn.length);
    }
}
