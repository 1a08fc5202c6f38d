package dev.starling.api.pattern;

/**
 * {@code window(block=64, blocks=3)}: query block {@code i} sees key blocks
 * {@code i − w/2 .. i + w/2} (clipped to the sequence), {@code w} odd.
 */
public final class WindowPattern extends BlockPattern {
    private final int blocks;

    /**
     * @param block block size in tokens
     * @param blocks window width {@code w} in blocks, odd and {@code >= 1}
     */
    public WindowPattern(int block, int blocks) {
        super(block);
        this.blocks = requireOdd("blocks", blocks);
    }

    static int requireOdd(String name, int w) {
        if (w < 1 || w % 2 == 0) {
            throw new IllegalArgumentException(name + " must be an odd number >= 1 (the row's own block plus as many on "
                    + "each side), got " + w);
        }
        return w;
    }

    @Override
    protected boolean perHead() {
        return false;
    }

    @Override
    protected void row(BlockGrid grid, int head, int qb, BlockRow row) {
        row.addRange((long) qb - blocks / 2, (long) qb + blocks / 2 + 1);
    }

    @Override
    public String text() {
        return "window(block=" + blockSize() + ", blocks=" + blocks + ")";
    }
}
