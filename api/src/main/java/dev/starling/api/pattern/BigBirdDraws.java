package dev.starling.api.pattern;

import dev.starling.api.pattern.numpy.NumpyLegacyRandom;
import java.util.Arrays;

/**
 * What Hugging Face's and Google's BigBird block-sparse attention attend to, rebuilt exactly: the
 * random key blocks their Python code draws with NumPy's legacy RNG ({@link NumpyLegacyRandom}),
 * and the key-block <em>list</em> each query block's softmax runs over, repeats included. Shared by
 * {@link HuggingFaceBigBirdPattern} and {@link GoogleBigBirdPattern}, which differ only in the
 * lengths that take the paper's draw, the eval mode and the full-attention switch.
 *
 * <p>The draw rules, as both libraries write them ({@code n} blocks of {@code b} tokens, {@code r}
 * random blocks, one global block at each end, a window of 3; {@code np.random.seed(seed)} first,
 * heads drawn in order from that one stream):
 * <ul>
 *   <li><b>Paper lengths</b> (Hugging Face: {@code N ∈ {1024, 3072, 4096}}; Google: also 2048), per
 *       head, the rows of {@code bigbird_block_rand_mask(max_pos, max_pos, b, b, r, last_idx=1024)}:
 *       with {@code M = max_pos / b} rows drawn (all of them, though only {@code n − 2} are kept),
 *       {@code middle = [1 .. M − 2]} and {@code last = 1024 / b − 1} (or {@code M − 1} when
 *       {@code 1024 <= 2b}), row {@code i} takes the first {@code r} of
 *       {@code permutation(candidates)}: {@code middle[2:last]} for {@code i = 1},
 *       {@code middle[3:last]} for {@code i = 2}, {@code middle[:last]} for {@code i ∈ {M − 3, M − 2}},
 *       else {@code middle[:last]} when {@code i − 2 > last}, {@code middle[:i − 2]} when
 *       {@code i + 1 == last}, else {@code middle[:i − 2] ++ middle[i + 1:last]} (Python slices).
 *       Draws come only from blocks {@code 1 .. 1024/b − 1}, so at 1,024 tokens a row may draw
 *       the last global block {@code n − 1} again.</li>
 *   <li><b>Other lengths</b>: {@code get_rand_attn_plan} splits the rows into a plan
 *       ({@code [(2r + 5)·b, N]} with {@code [r, 0]} random blocks when {@code 2r + 5 < n}, else
 *       {@code [(r + 5)·b, N]} with {@code [r/2, r − r/2]} when {@code r + 5 < n}, else {@code [N]}
 *       with {@code [r]}) and {@code bigbird_block_rand_mask_with_head} walks it plan piece by
 *       piece, row by row, head by head, each draw being {@code get_single_block_row_attention}:
 *       {@code permutation(to_start .. to_end − 1)} scanned in order for blocks outside the
 *       row's window, block 0 and block {@code to_end − 1} (row 1 also skips {@code to_end − 2},
 *       row {@code to_end − 2} also skips block 1), stopping at {@code r}.</li>
 *   <li>A row whose candidates are fewer than its random slots is a NumPy broadcasting error in
 *       the Python code (unless exactly one is left, which NumPy repeats into every slot); the
 *       pattern refuses those lengths with the same reason.</li>
 * </ul>
 *
 * <p>The list query block {@code i} reads ({@code R(i)} its {@code r} random blocks):
 * {@code 0 .. n − 1} for {@code i ∈ {0, n − 1}}; {@code 0, 1, 2, n − 1, R(1)} for {@code i = 1};
 * {@code 0, i − 1, i, i + 1, n − 1, R(i)} for {@code 2 <= i <= n − 3}; {@code 0, n − 3, n − 2, n − 1, R(n − 2)}
 * for {@code i = n − 2}. A block listed {@code c} times gets count {@code c} ({@link BlockLayout#ofLists}).
 */
final class BigBirdDraws {

    /** Which library's rules: they differ in the lengths that take the paper's draw. */
    enum Library {
        /** Hugging Face transformers, {@code BigBirdBlockSparseAttention}. */
        HUGGING_FACE(1024, 3072, 4096),
        /** Google's {@code bigbird/core/attention.py}, {@code MultiHeadedAttentionLayer}. */
        GOOGLE(1024, 2048, 3072, 4096);

        private final int[] paperLengths;

        Library(int... paperLengths) {
            this.paperLengths = paperLengths;
        }

        boolean paper(long paddedLength) {
            for (int p : paperLengths) {
                if (p == paddedLength) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Tokens the paper's draw looks at ({@code last_idx}). */
    private static final int PAPER_LAST_IDX = 1024;
    /** Most bounded draws the paper's draw may take (rows of the max_pos mask × candidates × heads). */
    static final long MAX_PAPER_DRAWS = 1L << 30;

    private BigBirdDraws() {
    }

    /**
     * The layout of one faithful pattern.
     *
     * @param library whose rules
     * @param what the pattern's text, for messages
     * @param queryLength {@code Nq}
     * @param keyLength {@code Nk}, must equal {@code Nq}
     * @param heads query heads {@code >= 1}
     * @param causal must be false
     * @param block block size {@code b}
     * @param random random blocks per row {@code r}
     * @param seed the NumPy seed (the layer index)
     * @param maxPos {@code max_position_embeddings} (HF) or {@code MAX_SEQ_LEN} (Google)
     * @param draw whether random blocks are drawn (false: every random block is block 0, HF's eval mode)
     * @param fullSwitch whether {@code N <= (5 + 2r)·b} gives dense attention (HF's model does)
     * @return the layout, with counts where a block is listed more than once
     */
    static BlockLayout layout(Library library, String what, int queryLength, int keyLength, int heads, boolean causal,
                              int block, int random, long seed, int maxPos, boolean draw, boolean fullSwitch) {
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be >= 1, got " + heads);
        }
        if (causal) {
            throw new IllegalArgumentException(what + " reproduces a bidirectional (encoder) attention and cannot be "
                    + "causal; use causal(bigbird(...)) for Starling's own causal BigBird");
        }
        if (queryLength != keyLength) {
            throw new IllegalArgumentException(what + " is self-attention: Nq must equal Nk, got Nq=" + queryLength
                    + ", Nk=" + keyLength);
        }
        BlockGrid grid = BlockGrid.of(queryLength, keyLength, block, false);
        int n = grid.queryBlocks();
        long padded = (long) n * block;
        if (fullSwitch && queryLength <= (5L + 2L * random) * block) {
            return new DensePattern(block).layout(queryLength, keyLength, heads);
        }
        if (n < 4) {
            throw new IllegalArgumentException(what + ": N=" + queryLength + " makes " + n + " blocks of " + block
                    + "; the block-sparse attention needs at least 4");
        }
        if (padded > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + ": N=" + queryLength + " padded to a multiple of " + block
                    + " exceeds " + Integer.MAX_VALUE + " tokens");
        }
        if (library.paper(padded) && maxPos / block < n) {
            throw new IllegalArgumentException(what + ": at N=" + padded + " the random blocks come from rows of a "
                    + "max_pos=" + maxPos + " mask, which has only " + (maxPos / block) + " blocks of " + block
                    + " but N needs " + n + "; max_pos must be >= " + padded);
        }
        if (draw && library.paper(padded)) {
            long rows = Math.max(0, maxPos / block - 2L);
            long work = rows * heads * Math.min(maxPos / block, PAPER_LAST_IDX / block + 1L);
            if (work > MAX_PAPER_DRAWS) {
                throw new IllegalArgumentException(what + ": the paper's draw goes through every row of a max_pos=" + maxPos
                        + " mask, " + rows + " rows per head for " + heads + " heads, about " + work
                        + " random draws, more than the limit of " + MAX_PAPER_DRAWS + "; use a smaller max_pos or a larger block");
            }
        }
        int layouts = draw ? heads : 1;
        long entries = layouts * (2L * n + (n - 2L) * (5L + random));
        if (entries > BlockLayout.entryLimit()) {
            throw new IllegalArgumentException(what + ": the layout would hold " + entries + " entries, more than the "
                    + "limit of " + BlockLayout.entryLimit() + "; use a larger block");
        }
        int[][][] rand = draw ? drawRandom(library, what, (int) padded, block, random, heads, seed, maxPos)
                : new int[1][n - 2][random];
        int[][][] lists = new int[layouts][][];
        for (int h = 0; h < layouts; h++) {
            lists[h] = lists(n, rand[h]);
        }
        return BlockLayout.ofLists(queryLength, keyLength, block, block, false, lists, draw ? heads : 0);
    }

    /** The key-block list of every query block, given the random blocks of rows {@code 1 .. n − 2}. */
    private static int[][] lists(int n, int[][] rand) {
        int[][] rows = new int[n][];
        int[] all = new int[n];
        Arrays.setAll(all, i -> i);
        rows[0] = all;
        rows[n - 1] = all;
        for (int i = 1; i <= n - 2; i++) {
            int[] fixed = i == 1 ? new int[] {0, 1, 2, n - 1}
                    : i == n - 2 ? new int[] {0, n - 3, n - 2, n - 1}
                    : new int[] {0, i - 1, i, i + 1, n - 1};
            int[] row = Arrays.copyOf(fixed, fixed.length + rand[i - 1].length);
            System.arraycopy(rand[i - 1], 0, row, fixed.length, rand[i - 1].length);
            rows[i] = row;
        }
        return rows;
    }

    /**
     * The training-mode draw: {@code rand_attn[head][row − 1][slot]} for rows {@code 1 .. n − 2}.
     *
     * @param length the padded length {@code N}, a multiple of {@code block}
     * @return per head, {@code n − 2} rows of {@code random} blocks
     */
    static int[][][] drawRandom(Library library, String what, int length, int block, int random, int heads, long seed,
                                int maxPos) {
        NumpyLegacyRandom rng = NumpyLegacyRandom.seeded(seed);
        int n = length / block;
        if (library.paper(length)) {
            int[][][] out = new int[heads][][];
            for (int h = 0; h < heads; h++) {
                out[h] = paperRows(rng, what, maxPos, block, random, n - 2);
            }
            return out;
        }
        int[][] plan = plan(length, block, random);
        return withHead(rng, what, length, block, heads, plan[0], plan[1]);
    }

    /**
     * {@code bigbird_block_rand_mask(len, len, block, block, r, last_idx=1024)[:keep]}: every row
     * {@code 1 .. len/block − 2} is drawn (the stream goes through all of them), the first {@code keep} are kept.
     */
    private static int[][] paperRows(NumpyLegacyRandom rng, String what, int length, int block, int r, int keep) {
        int m = length / block;
        int[] middle = new int[Math.max(0, m - 2)];
        Arrays.setAll(middle, i -> i + 1);
        int last = PAPER_LAST_IDX > 2 * block ? PAPER_LAST_IDX / block - 1 : m - 1;
        int[][] out = new int[keep][r];
        int[] scratch = new int[r];
        for (int i = 1; i <= m - 2; i++) {
            int start = i - 2;
            int end = i;
            int[] candidates;
            if (i == 1) {
                candidates = slice(middle, 2, last);
            } else if (i == 2) {
                candidates = slice(middle, 3, last);
            } else if (i == m - 3 || i == m - 2 || start > last) {
                candidates = slice(middle, 0, last);
            } else if (end + 1 == last) {
                candidates = slice(middle, 0, start);
            } else {
                int[] left = slice(middle, 0, start);
                int[] right = slice(middle, end + 1, last);
                candidates = Arrays.copyOf(left, left.length + right.length);
                System.arraycopy(right, 0, candidates, left.length, right.length);
            }
            int[] perm = rng.permutation(candidates);
            assign(i - 1 < keep ? out[i - 1] : scratch, 0, r, Arrays.copyOf(perm, Math.min(perm.length, r)), what, length,
                    block, i);
        }
        return out;
    }

    /** {@code get_rand_attn_plan}: plan lengths and the random blocks each piece draws. */
    static int[][] plan(int length, int block, int r) {
        int n = length / block;
        if (2 * r + 5 < n) {
            return new int[][] {{(2 * r + 5) * block, length}, {r, 0}};
        }
        if (r + 5 < n) {
            return new int[][] {{(r + 5) * block, length}, {r / 2, r - r / 2}};
        }
        return new int[][] {{length}, {r}};
    }

    /** {@code bigbird_block_rand_mask_with_head}: per head, rows 1 .. n − 2. */
    private static int[][][] withHead(NumpyLegacyRandom rng, String what, int length, int block, int heads,
                                      int[] planLength, int[] planRandom) {
        int n = length / block;
        int pieces = planLength.length;
        int[] planBlocks = new int[pieces];
        int[] before = new int[pieces + 1];
        for (int p = 0; p < pieces; p++) {
            planBlocks[p] = planLength[p] / block;
            before[p + 1] = before[p] + planRandom[p];
        }
        int[][][] out = new int[heads][n][before[pieces]];
        for (int p = 0; p < pieces; p++) {
            if (p > 0) {
                if (planRandom[p] > 0) {
                    // Rows before this piece draw this piece's share from its blocks.
                    for (int row = 1; row < planBlocks[p - 1]; row++) {
                        for (int h = 0; h < heads; h++) {
                            assign(out[h][row], before[p], planRandom[p],
                                    singleRow(rng, row, planBlocks[p - 1], planBlocks[p], planRandom[p]), what, length,
                                    block, row);
                        }
                    }
                }
                // This piece's rows draw every earlier piece's share from that piece's blocks.
                for (int q = 0; q < p; q++) {
                    if (planRandom[q] == 0) {
                        continue;
                    }
                    int toStart = q > 0 ? planBlocks[q - 1] : 0;
                    for (int row = planBlocks[p - 1]; row < planBlocks[p]; row++) {
                        for (int h = 0; h < heads; h++) {
                            assign(out[h][row], before[q], planRandom[q],
                                    singleRow(rng, row, toStart, planBlocks[q], planRandom[q]), what, length, block, row);
                        }
                    }
                }
            }
            if (planRandom[p] == 0) {
                continue;
            }
            int fromStart = p > 0 ? planBlocks[p - 1] : 1;
            int toStart = p > 0 ? planBlocks[p - 1] : 0;
            // Up to planBlocks[p] − 1: the last row is drawn too (and dropped below), as the Python code does.
            for (int row = fromStart; row < planBlocks[p]; row++) {
                for (int h = 0; h < heads; h++) {
                    assign(out[h][row], before[p], planRandom[p],
                            singleRow(rng, row, toStart, planBlocks[p], planRandom[p]), what, length, block, row);
                }
            }
        }
        int[][][] rows = new int[heads][][];
        for (int h = 0; h < heads; h++) {
            rows[h] = Arrays.copyOfRange(out[h], 1, n - 1);
        }
        return rows;
    }

    /** {@code get_single_block_row_attention} with a window of 1 + 1 and one global block at each end. */
    private static int[] singleRow(NumpyLegacyRandom rng, int blockId, int toStart, int toEnd, int r) {
        int[] blocks = new int[Math.max(0, toEnd - toStart)];
        Arrays.setAll(blocks, i -> toStart + i);
        int[] perm = rng.permutation(blocks);
        int[] chosen = new int[perm.length];
        int count = 0;
        for (int i = 0; i < perm.length; i++) {
            int c = perm[i];
            boolean illegal = (c >= blockId - 1 && c <= blockId + 1) || c == 0 || c == toEnd - 1
                    || (blockId == 1 && c == toEnd - 2) || (blockId == toEnd - 2 && c == 1);
            if (!illegal) {
                chosen[count++] = c;
            }
            if (count == r) {
                break;
            }
        }
        return Arrays.copyOf(chosen, count);
    }

    /**
     * {@code dest[from : from + width] = values} with NumPy's rule: equal lengths copy, a single value
     * fills every slot, anything else is the broadcasting error the Python code raises.
     */
    private static void assign(int[] dest, int from, int width, int[] values, String what, int length, int block,
                               int row) {
        if (values.length == width) {
            System.arraycopy(values, 0, dest, from, width);
        } else if (values.length == 1) {
            Arrays.fill(dest, from, from + width, values[0]);
        } else {
            throw new IllegalArgumentException(what + ": at N=" + length + " (" + (length / block) + " blocks of " + block
                    + ") query block " + row + " has only " + values.length + " candidate random block(s) for " + width
                    + " slots; the Python code fails here too (NumPy: could not broadcast input array from shape ("
                    + values.length + ",) into shape (" + width + ",)); use a longer sequence or fewer random blocks");
        }
    }

    /** Python's {@code a[start:stop]} for a step of 1. */
    private static int[] slice(int[] a, int start, int stop) {
        int from = clampIndex(start, a.length);
        int to = clampIndex(stop, a.length);
        return to > from ? Arrays.copyOfRange(a, from, to) : new int[0];
    }

    private static int clampIndex(int i, int length) {
        int j = i < 0 ? i + length : i;
        return Math.max(0, Math.min(length, j));
    }
}
