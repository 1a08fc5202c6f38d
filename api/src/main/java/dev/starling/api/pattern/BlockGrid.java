package dev.starling.api.pattern;

import dev.starling.api.plan.TokenMask;

/**
 * The block geometry a pattern row is computed on.
 *
 * @param queryLength {@code Nq}
 * @param keyLength {@code Nk}
 * @param block block size for queries and keys
 * @param queryBlocks {@code ceil(Nq / block)}
 * @param keyBlocks {@code ceil(Nk / block)}
 * @param causal whether the causal mask applies
 */
public record BlockGrid(int queryLength, int keyLength, int block, int queryBlocks, int keyBlocks, boolean causal) {

    /** @return the grid for the given lengths and block size */
    public static BlockGrid of(int queryLength, int keyLength, int block, boolean causal) {
        if (queryLength < 1 || keyLength < 1) {
            throw new IllegalArgumentException("lengths must be >= 1, got Nq=" + queryLength + ", Nk=" + keyLength);
        }
        if (block < 1) {
            throw new IllegalArgumentException("block must be >= 1, got " + block);
        }
        int queryBlocks = BlockLayout.ceilDiv(queryLength, block);
        int keyBlocks = BlockLayout.ceilDiv(keyLength, block);
        if (Math.max(queryBlocks, keyBlocks) > BlockLayout.MAX_ENTRIES) {
            throw new IllegalArgumentException("Nq=" + queryLength + ", Nk=" + keyLength + " with block " + block + " make "
                    + queryBlocks + " x " + keyBlocks + " blocks, more than the limit of " + BlockLayout.MAX_ENTRIES
                    + " per side; use a larger block");
        }
        return new BlockGrid(queryLength, keyLength, block, queryBlocks, keyBlocks, causal);
    }

    /**
     * The last key block holding a key that some row of query block {@code qb} may see under
     * the causal rule {@code j <= i + Nk − Nq}; {@code keyBlocks − 1} without causal; {@code −1}
     * when the causal rule leaves the whole query block without keys.
     *
     * @param qb query block
     * @return the last key block index, or −1
     */
    public int lastKeyBlock(int qb) {
        if (!causal) {
            return keyBlocks - 1;
        }
        int lastRow = (int) Math.min(queryLength, ((long) qb + 1) * block) - 1;
        int keyEnd = TokenMask.causalKeyEnd(lastRow, TokenMask.bottomRightShift(queryLength, keyLength), keyLength);
        return keyEnd <= 0 ? -1 : (keyEnd - 1) / block;
    }
}
