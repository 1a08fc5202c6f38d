package dev.starling.api.pattern;

import java.util.Arrays;

/**
 * The key blocks of one query block being assembled by a {@link BlockPattern}: a set of block
 * indices in {@code [0, keyBlocks)}. Adding an index outside that range is ignored, so patterns
 * may add a window or a global block without clipping; adding an index twice keeps one.
 */
public final class BlockRow {
    private final int keyBlocks;
    private final int[] stamp;
    private int generation = 1;
    private int[] blocks = new int[16];
    private int size;

    BlockRow(int keyBlocks) {
        this.keyBlocks = keyBlocks;
        this.stamp = new int[keyBlocks];
    }

    void clear() {
        size = 0;
        generation++;
        if (generation == Integer.MAX_VALUE) {
            Arrays.fill(stamp, 0);
            generation = 1;
        }
    }

    /** Adds key block {@code kb} if it lies in {@code [0, keyBlocks)}. */
    public void add(int kb) {
        if (kb < 0 || kb >= keyBlocks || stamp[kb] == generation) {
            return;
        }
        stamp[kb] = generation;
        if (size == blocks.length) {
            blocks = Arrays.copyOf(blocks, size * 2);
        }
        blocks[size++] = kb;
    }

    /**
     * Adds every key block in {@code [from, to)}, clipped to {@code [0, keyBlocks)}. Takes longs so that
     * callers compute bounds such as {@code qb + stride} without overflow.
     */
    public void addRange(long from, long to) {
        for (int kb = (int) Math.max(0, from), end = (int) Math.max(0, Math.min(to, keyBlocks)); kb < end; kb++) {
            add(kb);
        }
    }

    /** @return whether key block {@code kb} was added */
    public boolean contains(int kb) {
        return kb >= 0 && kb < keyBlocks && stamp[kb] == generation;
    }

    /** @return number of distinct key blocks added */
    public int size() {
        return size;
    }

    /** @return the distinct key blocks added, ascending, up to {@code limit} inclusive */
    int[] sortedUpTo(int limit) {
        Arrays.sort(blocks, 0, size);
        int n = 0;
        while (n < size && blocks[n] <= limit) {
            n++;
        }
        return Arrays.copyOf(blocks, n);
    }
}
