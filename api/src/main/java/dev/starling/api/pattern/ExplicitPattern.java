package dev.starling.api.pattern;

import dev.starling.api.npy.NpyArray;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code layout(file=mask.npy, block=64)} or a boolean matrix in code: an explicit block layout,
 * shared ({@code [queryBlocks][keyBlocks]}) or per head ({@code [heads][queryBlocks][keyBlocks]}).
 * It fits only lengths with exactly that many blocks; with causal, blocks wholly above the causal
 * diagonal are dropped.
 *
 * <p>The file is a NumPy {@code .npy} array of dtype {@code bool}, {@code uint8} or {@code int32} of
 * rank 2 or 3: the format {@code starling pattern --npy} writes. 0 means not allowed, 1 allowed, and a
 * value {@code c > 1} allowed with count {@code c}: every key of that block weighs {@code c} times in the
 * softmax (block multiplicity, DESIGN section 2). Negative values are refused.
 *
 * <p>Text form ({@link #text()}): a pattern read from a file is {@code layout(file='PATH', block=B)},
 * which parses back to an equal pattern while the file is unchanged. A pattern built from a
 * matrix in code has no text form: its {@code text()} is a description,
 * {@code layout(<HxQxK in code>, block=B)} (heads, query blocks, key blocks), which
 * {@link Patterns#parse} refuses; write the matrix to a {@code .npy} file to get text that parses.
 */
public final class ExplicitPattern implements PatternSpec {
    private final int block;
    /** {@code [heads][queryBlocks][keyBlocks]}: 0 not allowed, else the block's count. */
    private final int[][][] mask;
    private final String source;

    private ExplicitPattern(int block, int[][][] mask, String source) {
        BlockPattern.requireAtLeast("block", block, 1);
        if (mask.length == 0 || mask[0].length == 0 || mask[0][0].length == 0) {
            throw new IllegalArgumentException("an explicit layout needs at least one head, one query block and one key block");
        }
        for (int h = 0; h < mask.length; h++) {
            if (mask[h].length != mask[0].length) {
                throw new IllegalArgumentException("every head of an explicit layout needs " + mask[0].length + " rows");
            }
            for (int r = 0; r < mask[h].length; r++) {
                if (mask[h][r].length != mask[0][0].length) {
                    throw new IllegalArgumentException("every row of an explicit layout needs " + mask[0][0].length
                            + " key blocks, found one with " + mask[h][r].length);
                }
                for (int c = 0; c < mask[h][r].length; c++) {
                    if (mask[h][r][c] < 0) {
                        throw new IllegalArgumentException("explicit layout head " + h + ", query block " + r
                                + ", key block " + c + ": a count must be >= 0 (0: not allowed), got " + mask[h][r][c]);
                    }
                }
            }
        }
        this.block = block;
        this.mask = mask;
        this.source = source;
    }

    /**
     * A layout shared by every head.
     *
     * @param block block size in tokens
     * @param mask {@code [queryBlocks][keyBlocks]}, {@code true} where allowed. Copied.
     * @return the pattern
     * @throws IllegalArgumentException if {@code block < 1}, the mask has no row or no column, or its rows differ in length
     * @throws NullPointerException if the mask or one of its rows is {@code null}
     */
    public static ExplicitPattern of(int block, boolean[][] mask) {
        return new ExplicitPattern(block, new int[][][] {counts(mask)}, null);
    }

    /**
     * One layout per query head.
     *
     * @param block block size in tokens
     * @param mask {@code [heads][queryBlocks][keyBlocks]}. Copied.
     * @return the pattern
     * @throws IllegalArgumentException if {@code block < 1}, the mask has no head, row or column, or its heads or
     *         rows differ in size
     * @throws NullPointerException if the mask or one of its heads or rows is {@code null}
     */
    public static ExplicitPattern perHead(int block, boolean[][][] mask) {
        int[][][] copy = new int[mask.length][][];
        for (int h = 0; h < mask.length; h++) {
            copy[h] = counts(mask[h]);
        }
        return new ExplicitPattern(block, copy, null);
    }

    /**
     * A layout with block counts (block multiplicity, DESIGN section 2), shared ({@code counts.length == 1})
     * or one per query head.
     *
     * @param block block size in tokens
     * @param counts {@code [heads][queryBlocks][keyBlocks]}: 0 where not allowed, else the count {@code c >= 1}
     *               with which every key of the block weighs in the softmax. Copied.
     * @return the pattern
     * @throws IllegalArgumentException if {@code block < 1}, a count is negative, the array has no head, row or
     *         column, or its heads or rows differ in size
     * @throws NullPointerException if the array or one of its heads or rows is {@code null}
     */
    public static ExplicitPattern withCounts(int block, int[][][] counts) {
        int[][][] copy = new int[counts.length][][];
        for (int h = 0; h < counts.length; h++) {
            copy[h] = new int[counts[h].length][];
            for (int r = 0; r < counts[h].length; r++) {
                copy[h][r] = counts[h][r].clone();
            }
        }
        return new ExplicitPattern(block, copy, null);
    }

    /**
     * @return the file this pattern was read from ({@link #fromFile}), or empty for a mask built in code
     */
    public java.util.Optional<Path> file() {
        return source == null ? java.util.Optional.empty() : java.util.Optional.of(Path.of(source));
    }

    /**
     * Reads a {@code .npy} block mask (bool, uint8 or int32, rank 2 or 3; values above 1 are counts), or a
     * {@code .json} description of a layout exported for another library ({@link LayoutExchange}).
     *
     * @param file the file
     * @param block block size in tokens
     * @return the pattern
     * @throws UncheckedIOException if the file is missing, cannot be read, or is not a readable {@code .npy}
     *         array (the cause is the {@link IOException}, often a {@link dev.starling.api.npy.NpyFormatException})
     * @throws IllegalArgumentException if {@code block < 1}, the dtype is not {@code bool}, {@code uint8} or
     *         {@code int32}, a value is negative, the
     *         rank is not 2 or 3, a dimension is 0, or the file is larger than {@link BlockLayout#entryLimit()}
     *         blocks (checked before it is read)
     */
    public static ExplicitPattern fromFile(Path file, int block) {
        if (file.getFileName() != null && file.getFileName().toString().endsWith(".json")) {
            return fromExchange(file, block);
        }
        NpyArray array;
        try {
            // A block mask holds one byte per block; refuse a file too big for one before reading it.
            long limit = BlockLayout.entryLimit();
            if (java.nio.file.Files.isRegularFile(file) && java.nio.file.Files.size(file) > limit + 4096) {
                throw new IllegalArgumentException("layout file " + file + " holds " + java.nio.file.Files.size(file)
                        + " bytes, more than a block mask may (" + limit + " blocks); use a larger block");
            }
            array = NpyArray.read(file);
        } catch (IOException e) {
            throw readFailure(file, e);
        }
        int[] s = array.shape();
        if (s.length != 2 && s.length != 3) {
            throw new IllegalArgumentException("layout file " + file + " has shape " + Arrays.toString(s)
                    + " but must be [queryBlocks, keyBlocks] or [heads, queryBlocks, keyBlocks]");
        }
        int[] values = array.toMaskCounts();
        int heads = s.length == 3 ? s[0] : 1;
        int rows = s[s.length - 2];
        int cols = s[s.length - 1];
        int[][][] mask = new int[heads][rows][cols];
        int p = 0;
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    mask[h][r][c] = values[p++];
                }
            }
        }
        return new ExplicitPattern(block, mask, file.toString());
    }

    /**
     * A layout another library's arrays describe ({@link LayoutExchange#read}: FlexAttention, BSR or ONNX
     * Runtime CSR, with its JSON description), as a mask of its block sets; its block sizes must both be
     * {@code block}.
     */
    private static ExplicitPattern fromExchange(Path file, int block) {
        BlockLayout l = LayoutExchange.read(file);
        if (l.queryBlock() != block || l.keyBlock() != block) {
            throw new IllegalArgumentException("layout file " + file + " has blocks of " + l.queryBlock() + " x "
                    + l.keyBlock() + " tokens but the pattern says block=" + block);
        }
        int[][][] mask = new int[l.heads()][l.queryBlocks()][l.keyBlocks()];
        for (int h = 0; h < l.heads(); h++) {
            for (int r = 0; r < l.queryBlocks(); r++) {
                for (int p = l.rowBegin(h, r); p < l.rowEnd(h, r); p++) {
                    mask[h][r][l.keyBlock(h, p)] = 1;
                }
            }
        }
        return new ExplicitPattern(block, mask, file.toString());
    }

    /**
     * The error for a layout file that could not be read, with the cause in plain words
     * ({@code "permission denied"}, not an {@link java.nio.file.AccessDeniedException}'s bare file name).
     */
    static UncheckedIOException readFailure(Path file, IOException e) {
        return new UncheckedIOException("cannot read layout file " + file + ": " + dev.starling.api.io.Reasons.of(e), e);
    }

    /** A boolean mask as counts: 1 where allowed, 0 elsewhere. */
    private static int[][] counts(boolean[][] m) {
        int[][] c = new int[m.length][];
        for (int i = 0; i < m.length; i++) {
            c[i] = new int[m[i].length];
            for (int j = 0; j < m[i].length; j++) {
                c[i][j] = m[i][j] ? 1 : 0;
            }
        }
        return c;
    }

    @Override
    public int blockSize() {
        return block;
    }

    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        BlockGrid grid = BlockGrid.of(queryLength, keyLength, block, causal);
        if (grid.queryBlocks() != mask[0].length || grid.keyBlocks() != mask[0][0].length) {
            throw new IllegalArgumentException("explicit layout " + text() + " has " + mask[0].length + "x"
                    + mask[0][0].length + " blocks but Nq=" + queryLength + ", Nk=" + keyLength + " with block " + block
                    + " need " + grid.queryBlocks() + "x" + grid.keyBlocks());
        }
        if (mask.length != 1 && mask.length != heads) {
            throw new IllegalArgumentException("explicit layout " + text() + " has " + mask.length
                    + " head layouts but the problem has " + heads + " query heads");
        }
        int[][] rowStart = new int[mask.length][grid.queryBlocks() + 1];
        int[][] columns = new int[mask.length][];
        int[][] counts = new int[mask.length][];
        for (int h = 0; h < mask.length; h++) {
            int n = 0;
            for (int pass = 0; pass < 2; pass++) {
                n = 0;
                for (int qb = 0; qb < grid.queryBlocks(); qb++) {
                    // Blocks wholly above the causal diagonal are dropped.
                    for (int kb = 0, last = grid.lastKeyBlock(qb); kb <= last && kb < grid.keyBlocks(); kb++) {
                        if (mask[h][qb][kb] != 0) {
                            if (pass == 1) {
                                columns[h][n] = kb;
                                counts[h][n] = mask[h][qb][kb];
                            }
                            n++;
                        }
                    }
                    rowStart[h][qb + 1] = n;
                }
                if (pass == 0) {
                    columns[h] = new int[n];
                    counts[h] = new int[n];
                }
            }
        }
        return BlockLayout.ofCsr(queryLength, keyLength, block, block, causal, rowStart, columns, counts, 0);
    }

    /**
     * The text form, or for a matrix given in code a description that does not parse (see the
     * class comment).
     *
     * @return {@code layout(file='PATH', block=B)} for a pattern read from a file (the path in double
     *         quotes when it holds a single quote), else {@code layout(<HxQxK in code>, block=B)}
     */
    @Override
    public String text() {
        if (source == null) {
            return "layout(<" + mask.length + "x" + mask[0].length + "x" + mask[0][0].length + " in code>, block=" + block + ")";
        }
        char quote = source.indexOf('\'') < 0 ? '\'' : '"';
        return "layout(file=" + quote + source + quote + ", block=" + block + ")";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExplicitPattern e && e.block == block && Arrays.deepEquals(e.mask, mask);
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(mask) * 31 + block;
    }

    @Override
    public String toString() {
        return text();
    }
}
