package dev.starling.api.pattern;

import java.util.Arrays;

/**
 * Which key blocks each query block may attend to, per query head or shared by all heads, in
 * compressed sparse row (CSR) form: for head layout {@code h}, row {@code qb} holds the key blocks
 * {@code keyBlocks[rowStart[qb]] .. keyBlocks[rowStart[qb + 1] − 1]}, sorted ascending and unique.
 *
 * <p>Memory is O(nnz): a BigBird layout for a million tokens takes a few hundred kilobytes per
 * head. The layout records the lengths {@code Nq} and {@code Nk} it was built for; a plan refuses
 * a layout built for other lengths. Token-level refinements (partial tail blocks, key and query
 * lengths, and the causal mask when {@link #causal()} is set) are applied inside the allowed
 * blocks by {@link dev.starling.api.plan.TokenMask}, the one place that says which tokens a row
 * reads (DESIGN section 3b).
 *
 * <p>Instances are immutable.
 */
public final class BlockLayout {
    /**
     * Most entries a layout holds: allowed blocks summed over its head layouts, and row offsets
     * (2^27, 512 MiB of indices), and never more than {@link #entryLimit()} allows in this heap.
     * Patterns refuse a larger layout before building it, saying how big it would be; use a larger
     * block.
     */
    public static final long MAX_ENTRIES = 1L << 27;

    /**
     * @return the most entries a pattern builds in this JVM: {@link #MAX_ENTRIES}, or fewer when the
     *         heap is small ({@code maxMemory / 32} bytes' worth of ints, so building leaves room for the rest)
     */
    public static long entryLimit() {
        return Math.min(MAX_ENTRIES, Runtime.getRuntime().maxMemory() / 32);
    }

    private final int queryLength;
    private final int keyLength;
    private final int queryBlock;
    private final int keyBlock;
    private final int queryBlocks;
    private final int keyBlocks;
    private final boolean causal;
    private final int drawnForHeads;
    private final int[][] rowStart;
    private final int[][] columns;
    /** Per head layout, the count of each CSR entry; {@code null} when every count is 1 (set semantics). */
    private final int[][] counts;

    private BlockLayout(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                        int drawnForHeads, int[][] rowStart, int[][] columns) {
        this(queryLength, keyLength, queryBlock, keyBlock, causal, drawnForHeads, rowStart, columns, null);
    }

    private BlockLayout(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                        int drawnForHeads, int[][] rowStart, int[][] columns, int[][] counts) {
        this.counts = counts;
        this.queryLength = queryLength;
        this.keyLength = keyLength;
        this.queryBlock = queryBlock;
        this.keyBlock = keyBlock;
        this.queryBlocks = ceilDiv(queryLength, queryBlock);
        this.keyBlocks = ceilDiv(keyLength, keyBlock);
        this.causal = causal;
        this.drawnForHeads = drawnForHeads;
        this.rowStart = rowStart;
        this.columns = columns;
    }

    /**
     * Builds a layout from CSR arrays, one pair per head layout (one pair: shared by all heads).
     * The arrays are copied and checked: {@code rowStart} has {@code ceil(Nq/queryBlock) + 1}
     * non-decreasing entries from 0 to {@code keyBlocks.length}; each row is strictly ascending
     * within {@code [0, ceil(Nk/keyBlock))}.
     *
     * @param queryLength {@code Nq}
     * @param keyLength {@code Nk}
     * @param queryBlock query block size
     * @param keyBlock key block size
     * @param causal whether the token-level causal mask applies on top of the blocks
     * @param rowStart per head layout, {@code nQueryBlocks + 1} offsets. Not modified.
     * @param keyBlocks per head layout, the key block indices. Not modified.
     * @return the layout
     * @throws IllegalArgumentException on any inconsistency, naming the head and row
     */
    public static BlockLayout ofCsr(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                                    int[][] rowStart, int[][] keyBlocks) {
        return ofCsr(queryLength, keyLength, queryBlock, keyBlock, causal, rowStart, keyBlocks, 0);
    }

    /**
     * Same as {@link #ofCsr(int, int, int, int, boolean, int[][], int[][])} for rows cut from a layout
     * whose random blocks were drawn for {@code drawnForHeads} query heads (0: rows independent of the
     * head), so that a problem with another head count is still refused ({@link #drawnForHeads()}).
     *
     * @param drawnForHeads see {@link #drawnForHeads()}
     * @return the layout
     */
    public static BlockLayout ofCsr(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                                    int[][] rowStart, int[][] keyBlocks, int drawnForHeads) {
        if (queryLength < 1 || keyLength < 1) {
            throw new IllegalArgumentException("lengths must be >= 1, got Nq=" + queryLength + ", Nk=" + keyLength);
        }
        if (queryBlock < 1 || keyBlock < 1) {
            throw new IllegalArgumentException("block sizes must be >= 1, got " + queryBlock + " and " + keyBlock);
        }
        if (rowStart.length == 0 || rowStart.length != keyBlocks.length) {
            throw new IllegalArgumentException("rowStart has " + rowStart.length + " head layouts but keyBlocks has "
                    + keyBlocks.length);
        }
        int nqb = ceilDiv(queryLength, queryBlock);
        int nkb = ceilDiv(keyLength, keyBlock);
        int[][] rs = new int[rowStart.length][];
        int[][] kb = new int[keyBlocks.length][];
        for (int h = 0; h < rowStart.length; h++) {
            rs[h] = rowStart[h].clone();
            kb[h] = keyBlocks[h].clone();
            if (rs[h].length != nqb + 1) {
                throw new IllegalArgumentException("head layout " + h + ": rowStart has " + rs[h].length
                        + " entries but " + nqb + " query blocks need " + (nqb + 1));
            }
            if (rs[h][0] != 0 || rs[h][nqb] != kb[h].length) {
                throw new IllegalArgumentException("head layout " + h + ": rowStart must run from 0 to "
                        + kb[h].length + " but runs from " + rs[h][0] + " to " + rs[h][nqb]);
            }
            for (int r = 0; r < nqb; r++) {
                if (rs[h][r + 1] < rs[h][r]) {
                    throw new IllegalArgumentException("head layout " + h + ": rowStart decreases at row " + r);
                }
                for (int p = rs[h][r]; p < rs[h][r + 1]; p++) {
                    int c = kb[h][p];
                    if (c < 0 || c >= nkb) {
                        throw new IllegalArgumentException("head layout " + h + ", row " + r + ": key block " + c
                                + " is outside [0, " + nkb + ")");
                    }
                    if (p > rs[h][r] && c <= kb[h][p - 1]) {
                        throw new IllegalArgumentException("head layout " + h + ", row " + r
                                + ": key blocks must be strictly ascending, found " + kb[h][p - 1] + " then " + c);
                    }
                }
            }
        }
        return new BlockLayout(queryLength, keyLength, queryBlock, keyBlock, causal, drawnForHeads, rs, kb);
    }

    /**
     * Same as {@link #ofCsr(int, int, int, int, boolean, int[][], int[][], int)} with a count per entry:
     * entry {@code p} of head layout {@code h} weighs every key of its block {@code counts[h][p]} times in
     * the softmax (equivalently, {@code ln counts[h][p]} is added to those keys' scores; DESIGN section 2,
     * block multiplicity). Counts of 1 everywhere give a layout equal to one built without counts.
     *
     * @param counts per head layout, one count {@code >= 1} per key block index, or {@code null} for all 1.
     *               Not modified.
     * @return the layout
     * @throws IllegalArgumentException on any inconsistency, naming the head, row and entry
     */
    public static BlockLayout ofCsr(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                                    int[][] rowStart, int[][] keyBlocks, int[][] counts, int drawnForHeads) {
        BlockLayout base = ofCsr(queryLength, keyLength, queryBlock, keyBlock, causal, rowStart, keyBlocks, drawnForHeads);
        if (counts == null) {
            return base;
        }
        if (counts.length != keyBlocks.length) {
            throw new IllegalArgumentException("counts has " + counts.length + " head layouts but keyBlocks has "
                    + keyBlocks.length);
        }
        int[][] cs = new int[counts.length][];
        boolean any = false;
        for (int h = 0; h < counts.length; h++) {
            if (counts[h] == null || counts[h].length != keyBlocks[h].length) {
                throw new IllegalArgumentException("head layout " + h + ": counts has "
                        + (counts[h] == null ? "no array" : counts[h].length + " entries") + " but keyBlocks has "
                        + keyBlocks[h].length);
            }
            cs[h] = counts[h].clone();
            for (int p = 0; p < cs[h].length; p++) {
                if (cs[h][p] < 1) {
                    throw new IllegalArgumentException("head layout " + h + ", entry " + p + " (key block "
                            + keyBlocks[h][p] + "): counts must be >= 1, got " + cs[h][p]);
                }
                any |= cs[h][p] != 1;
            }
        }
        return any ? new BlockLayout(queryLength, keyLength, queryBlock, keyBlock, causal, drawnForHeads,
                base.rowStart, base.columns, cs) : base;
    }

    /**
     * This layout's blocks with other counts (block multiplicity, DESIGN section 2): lengths, block sizes,
     * causal flag, head layouts and rows unchanged.
     *
     * @param counts per head layout, one count {@code >= 1} per CSR entry ({@link #counts(int)} gives this
     *               layout's), or {@code null} for all 1. Not modified.
     * @return the layout; equal to one built without counts when every count is 1
     * @throws IllegalArgumentException when the counts do not fit the entries or one is below 1
     */
    public BlockLayout withCounts(int[][] counts) {
        return ofCsr(queryLength, keyLength, queryBlock, keyBlock, causal, rowStart, columns, counts, drawnForHeads);
    }

    /**
     * Builds a layout from block lists in which a key block may appear more than once: the list of
     * query block {@code qb} of head layout {@code h} is {@code lists[h][qb]}, in any order; a key block
     * listed {@code c} times gets count {@code c} (Hugging Face's BigBird softmax runs over such lists).
     *
     * @param lists {@code [headLayouts][ceil(Nq/queryBlock)][any]} key block indices. Not modified.
     * @param drawnForHeads see {@link #drawnForHeads()}
     * @return the layout, sorted and with counts
     * @throws IllegalArgumentException on a wrong row count or a key block out of range, naming head and row
     */
    public static BlockLayout ofLists(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                                      int[][][] lists, int drawnForHeads) {
        if (lists == null || lists.length == 0) {
            throw new IllegalArgumentException("lists must have at least one head layout");
        }
        int[][] rs = new int[lists.length][];
        int[][] kb = new int[lists.length][];
        int[][] cs = new int[lists.length][];
        for (int h = 0; h < lists.length; h++) {
            int rows = lists[h].length;
            rs[h] = new int[rows + 1];
            int[] cols = new int[0];
            int[] cnt = new int[0];
            int n = 0;
            for (int r = 0; r < rows; r++) {
                int[] sorted = lists[h][r].clone();
                Arrays.sort(sorted);
                for (int i = 0; i < sorted.length; i++) {
                    if (i > 0 && sorted[i] == sorted[i - 1]) {
                        cnt[n - 1]++;
                        continue;
                    }
                    if (n == cols.length) {
                        cols = Arrays.copyOf(cols, Math.max(16, 2 * n));
                        cnt = Arrays.copyOf(cnt, cols.length);
                    }
                    cols[n] = sorted[i];
                    cnt[n++] = 1;
                }
                rs[h][r + 1] = n;
            }
            kb[h] = Arrays.copyOf(cols, n);
            cs[h] = Arrays.copyOf(cnt, n);
        }
        return ofCsr(queryLength, keyLength, queryBlock, keyBlock, causal, rs, kb, cs, drawnForHeads);
    }

    /**
     * Trusted constructor for builders that already produce valid sorted rows.
     *
     * @param drawnForHeads the query heads a head-dependent pattern was drawn for, or 0 when the rows do not
     *                      depend on the head
     */
    static BlockLayout trusted(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                               int drawnForHeads, int[][] rowStart, int[][] keyBlocks) {
        return new BlockLayout(queryLength, keyLength, queryBlock, keyBlock, causal, drawnForHeads, rowStart, keyBlocks);
    }

    /**
     * Builds a layout from a boolean block mask {@code [heads][queryBlocks][keyBlocks]}
     * ({@code heads == 1}: shared).
     *
     * @param mask {@code true} where the block is allowed. Not modified.
     * @return the layout
     */
    public static BlockLayout ofMask(int queryLength, int keyLength, int queryBlock, int keyBlock, boolean causal,
                                     boolean[][][] mask) {
        if (queryLength < 1 || keyLength < 1) {
            throw new IllegalArgumentException("lengths must be >= 1, got Nq=" + queryLength + ", Nk=" + keyLength);
        }
        if (queryBlock < 1 || keyBlock < 1) {
            throw new IllegalArgumentException("block sizes must be >= 1, got " + queryBlock + " and " + keyBlock);
        }
        if (mask == null || mask.length == 0) {
            throw new IllegalArgumentException("mask must have at least one head layout, got "
                    + (mask == null ? "null" : "none"));
        }
        int nqb = ceilDiv(queryLength, queryBlock);
        int nkb = ceilDiv(keyLength, keyBlock);
        int[][] rs = new int[mask.length][];
        int[][] kb = new int[mask.length][];
        for (int h = 0; h < mask.length; h++) {
            if (mask[h].length != nqb) {
                throw new IllegalArgumentException("mask head " + h + " has " + mask[h].length + " query blocks but Nq="
                        + queryLength + " with block " + queryBlock + " needs " + nqb);
            }
            rs[h] = new int[nqb + 1];
            int nnz = 0;
            for (int r = 0; r < nqb; r++) {
                if (mask[h][r].length != nkb) {
                    throw new IllegalArgumentException("mask head " + h + " row " + r + " has " + mask[h][r].length
                            + " key blocks but Nk=" + keyLength + " with block " + keyBlock + " needs " + nkb);
                }
                for (boolean b : mask[h][r]) {
                    nnz += b ? 1 : 0;
                }
                rs[h][r + 1] = nnz;
            }
            kb[h] = new int[nnz];
            int p = 0;
            for (int r = 0; r < nqb; r++) {
                for (int c = 0; c < nkb; c++) {
                    if (mask[h][r][c]) {
                        kb[h][p++] = c;
                    }
                }
            }
        }
        return new BlockLayout(queryLength, keyLength, queryBlock, keyBlock, causal, 0, rs, kb);
    }

    static int ceilDiv(int a, int b) {
        return (int) (((long) a + b - 1) / b);
    }

    /** @return {@code Nq} this layout was built for */
    public int queryLength() { return queryLength; }
    /** @return {@code Nk} this layout was built for */
    public int keyLength() { return keyLength; }
    /** @return query block size in tokens */
    public int queryBlock() { return queryBlock; }
    /** @return key block size in tokens */
    public int keyBlock() { return keyBlock; }
    /** @return {@code ceil(Nq / queryBlock)} */
    public int queryBlocks() { return queryBlocks; }
    /** @return {@code ceil(Nk / keyBlock)} */
    public int keyBlocks() { return keyBlocks; }
    /** @return whether the token-level causal mask applies on top of the blocks */
    public boolean causal() { return causal; }
    /** @return number of distinct head layouts (1 when shared) */
    public int heads() { return rowStart.length; }
    /** @return whether one layout serves every head */
    public boolean isShared() { return rowStart.length == 1; }

    /**
     * Whether some entry counts its key block more than once in the softmax (DESIGN section 2: a
     * count {@code c > 1} weighs every key of the block {@code c} times). A backend must declare
     * {@link dev.starling.api.Feature#BLOCK_COUNTS} to be given such a layout.
     *
     * @return {@code false} for every layout of set semantics (all counts 1)
     */
    public boolean hasCounts() { return counts != null; }

    /**
     * @return the count of CSR entry {@code p} of query head {@code h}: how many times every key of block
     *         {@link #keyBlock(int, int) keyBlock(h, p)} is weighed in the softmax (1 unless {@link #hasCounts()})
     */
    public int count(int h, int p) {
        return counts == null ? 1 : counts[headIndex(h)][p];
    }

    /** @return a copy of the counts of head layout {@code headLayout}, one per key block index (all 1 without counts) */
    public int[] counts(int headLayout) {
        if (counts == null) {
            int[] ones = new int[columns[headLayout].length];
            Arrays.fill(ones, 1);
            return ones;
        }
        return counts[headLayout].clone();
    }
    /**
     * @return the number of query heads a head-dependent pattern (random blocks) was drawn for, or 0 when the
     *         rows do not depend on the head (then any number of heads may share it)
     */
    public int drawnForHeads() { return drawnForHeads; }

    /** @return the head layout used by query head {@code h} ({@code 0} when shared) */
    public int headIndex(int h) {
        return rowStart.length == 1 ? 0 : h;
    }

    /** @return index into {@link #keyBlock(int, int)} of the first key block of row {@code qb} for query head {@code h} */
    public int rowBegin(int h, int qb) {
        return rowStart[headIndex(h)][qb];
    }

    /** @return one past the last index of row {@code qb} for query head {@code h} */
    public int rowEnd(int h, int qb) {
        return rowStart[headIndex(h)][qb + 1];
    }

    /** @return the key block at CSR position {@code p} of query head {@code h} */
    public int keyBlock(int h, int p) {
        return columns[headIndex(h)][p];
    }

    /** @return number of allowed key blocks in row {@code qb} of query head {@code h} */
    public int rowSize(int h, int qb) {
        return rowEnd(h, qb) - rowBegin(h, qb);
    }

    /** @return whether key block {@code kb} is allowed for query block {@code qb} of query head {@code h} */
    public boolean allowed(int h, int qb, int kb) {
        return entry(h, qb, kb) >= 0;
    }

    /**
     * @return the CSR position of key block {@code kb} in row {@code qb} of query head {@code h} (an index for
     *         {@link #keyBlock(int, int)} and {@link #count(int, int)}), or {@code -1} when the block is not allowed
     */
    public int entry(int h, int qb, int kb) {
        int[] c = columns[headIndex(h)];
        int p = Arrays.binarySearch(c, rowBegin(h, qb), rowEnd(h, qb), kb);
        return p >= 0 ? p : -1;
    }

    /** @return the largest count of any entry (1 without counts, also for an empty layout) */
    public int maxCount() {
        int max = 1;
        for (int[] cs : counts == null ? new int[0][] : counts) {
            for (int c : cs) {
                max = Math.max(max, c);
            }
        }
        return max;
    }

    /** @return a copy of the CSR row offsets of head layout {@code headLayout} */
    public int[] rowStart(int headLayout) {
        return rowStart[headLayout].clone();
    }

    /** @return a copy of the CSR key block indices of head layout {@code headLayout} */
    public int[] keyBlockIndices(int headLayout) {
        return columns[headLayout].clone();
    }

    /** @return allowed blocks of head layout {@code headLayout} */
    public int nnz(int headLayout) {
        return columns[headLayout].length;
    }

    /** @return allowed blocks summed over {@code heads} query heads */
    public long nnzOverHeads(int heads) {
        long total = 0;
        for (int h = 0; h < heads; h++) {
            total += columns[headIndex(h)].length;
        }
        return total;
    }

    /**
     * The block mask of one head layout, for display and export.
     *
     * @return {@code [queryBlocks][keyBlocks]}, {@code true} where allowed
     */
    public boolean[][] mask(int headLayout) {
        boolean[][] m = new boolean[queryBlocks][keyBlocks];
        for (int r = 0; r < queryBlocks; r++) {
            for (int p = rowStart[headLayout][r]; p < rowStart[headLayout][r + 1]; p++) {
                m[r][columns[headLayout][p]] = true;
            }
        }
        return m;
    }

    /**
     * The layout as bytes {@code [heads][queryBlocks][keyBlocks]} in C order, 0 where not allowed, else the
     * entry's count (1 without counts): the body of the {@code uint8} array {@code starling pattern --npy} writes. Block {@code h} is the
     * layout query head {@code h} uses (shared layouts are repeated).
     *
     * @param heads number of query heads
     * @return a new array of {@code heads · queryBlocks · keyBlocks} bytes
     * @throws IllegalArgumentException when a count exceeds 255 ({@link #countMask} holds it) or the mask is too large
     */
    public byte[] maskBytes(int heads) {
        if (maxCount() > 255) {
            throw new IllegalArgumentException("a count of " + maxCount() + " does not fit a uint8 block mask; use countMask");
        }
        byte[] data = new byte[maskSize(heads, "bytes")];
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < queryBlocks; r++) {
                for (int p = rowBegin(h, r); p < rowEnd(h, r); p++) {
                    data[(h * queryBlocks + r) * keyBlocks + keyBlock(h, p)] = (byte) count(h, p);
                }
            }
        }
        return data;
    }

    /** The size of a {@code [heads, queryBlocks, keyBlocks]} mask, refused past what a Java array holds. */
    private int maskSize(int heads, String unit) {
        long size = (long) heads * queryBlocks * keyBlocks;
        if (heads < 1 || size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a block mask of [" + heads + ", " + queryBlocks + ", " + keyBlocks + "] would be "
                    + size + " " + unit + ", more than a Java array holds (" + (Integer.MAX_VALUE - 8) + "); use a larger block");
        }
        return (int) size;
    }

    /**
     * The layout as counts {@code [heads][queryBlocks][keyBlocks]} in C order: 0 where not allowed, else the
     * entry's count (1 without counts); the body of the {@code int32} array {@code starling pattern --npy}
     * writes when a count exceeds 255. Block {@code h} is the layout query head {@code h} uses.
     *
     * @param heads number of query heads
     * @return a new array of {@code heads · queryBlocks · keyBlocks} ints
     */
    public int[] countMask(int heads) {
        int[] data = new int[maskSize(heads, "ints")];
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < queryBlocks; r++) {
                for (int p = rowBegin(h, r); p < rowEnd(h, r); p++) {
                    data[(h * queryBlocks + r) * keyBlocks + keyBlock(h, p)] = count(h, p);
                }
            }
        }
        return data;
    }

    /** @return approximate heap bytes held by the CSR arrays */
    public long memoryBytes() {
        long bytes = 0;
        for (int h = 0; h < rowStart.length; h++) {
            bytes += 4L * (rowStart[h].length + columns[h].length) + 32;
            bytes += counts == null ? 0 : 4L * counts[h].length + 16;
        }
        return bytes;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BlockLayout l && l.queryLength == queryLength && l.keyLength == keyLength
                && l.queryBlock == queryBlock && l.keyBlock == keyBlock && l.causal == causal
                && l.drawnForHeads == drawnForHeads
                && Arrays.deepEquals(l.rowStart, rowStart) && Arrays.deepEquals(l.columns, columns)
                && Arrays.deepEquals(l.counts, counts);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.deepHashCode(rowStart) + Arrays.deepHashCode(columns)) + Arrays.deepHashCode(counts);
    }

    @Override
    public String toString() {
        return "BlockLayout[Nq=" + queryLength + ", Nk=" + keyLength + ", block=" + queryBlock
                + (keyBlock != queryBlock ? "x" + keyBlock : "") + ", " + queryBlocks + "x" + keyBlocks + " blocks, "
                + (isShared() ? "shared" : heads() + " heads") + ", nnz=" + nnz(0) + (causal ? ", causal" : "") + (counts != null ? ", with counts" : "") + "]";
    }
}
