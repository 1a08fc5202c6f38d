package dev.starling.api.plan;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import java.util.Arrays;

/**
 * A problem's keys cut into {@code S} contiguous ranges of key blocks — shards — so that each
 * shard's attention can be computed where its keys and values live, with only them in memory, and
 * the partial results merged exactly ({@link OnlineSoftmax#merge}, DESIGN section 8): the basis of
 * attention over sequences larger than one machine.
 *
 * <p>Shard {@code s} holds keys {@code [firstKey(s), firstKey(s) + keyCount(s))}. Its
 * {@link #problem(int) problem} has {@code Nk' = keyCount(s)}, the same queries, key lengths cut to
 * the shard, and the causal rule moved to the shard ({@code causalShift = shift − firstKey(s)}), so
 * any backend computes it with an ordinary plan. Its {@link #layout(int) layout} holds the
 * (query block, key block) pairs of the whole layout whose key block lies in the shard, renumbered
 * from the shard's first block, with their counts (block multiplicity). Every allowed pair of the
 * whole is in exactly one shard, so the merge of the shards' {@code (O, LSE)} is the whole.
 *
 * <p>Immutable.
 */
public final class KeyShards {
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final int[] firstBlock;

    private KeyShards(AttentionProblem problem, BlockLayout layout, int[] firstBlock) {
        this.problem = problem;
        this.layout = layout;
        this.firstBlock = firstBlock;
    }

    /**
     * Cuts the key blocks at the given block boundaries.
     *
     * @param problem the whole problem. Not modified.
     * @param layout its layout. Not modified.
     * @param boundaries first key block of each shard after the first, strictly ascending in
     *                   {@code (0, keyBlocks)}; {@code S − 1} of them for {@code S} shards
     * @return the shards
     * @throws IllegalArgumentException if the boundaries are not strictly ascending inside the key blocks
     */
    public static KeyShards at(AttentionProblem problem, BlockLayout layout, int... boundaries) {
        TokenMask.of(problem, layout);
        int[] first = new int[boundaries.length + 1];
        for (int s = 0; s < boundaries.length; s++) {
            int prev = s == 0 ? 0 : boundaries[s - 1];
            if (boundaries[s] <= prev || boundaries[s] >= layout.keyBlocks()) {
                throw new IllegalArgumentException("shard boundaries must be strictly ascending key blocks in (0, "
                        + layout.keyBlocks() + "), got " + Arrays.toString(boundaries));
            }
            first[s + 1] = boundaries[s];
        }
        return new KeyShards(problem, layout, first);
    }

    /**
     * Cuts the key blocks into {@code shards} contiguous ranges holding about equal numbers of
     * allowed blocks (summed over query heads), so shards cost about the same.
     *
     * @param problem the whole problem. Not modified.
     * @param layout its layout. Not modified.
     * @param shards {@code S}, between 1 and the number of key blocks
     * @return the shards
     * @throws IllegalArgumentException if {@code shards} is out of range
     */
    public static KeyShards balanced(AttentionProblem problem, BlockLayout layout, int shards) {
        if (shards < 1 || shards > layout.keyBlocks()) {
            throw new IllegalArgumentException("shards must be in [1, " + layout.keyBlocks() + "] (the key blocks), got "
                    + shards);
        }
        long[] perBlock = new long[layout.keyBlocks()];
        long total = 0;
        for (int h = 0; h < problem.queryHeads(); h++) {
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
                    perBlock[layout.keyBlock(h, p)]++;
                    total++;
                }
            }
        }
        int[] boundaries = new int[shards - 1];
        long seen = 0;
        int s = 0;
        for (int kb = 0; kb < layout.keyBlocks() && s < shards - 1; kb++) {
            seen += perBlock[kb];
            int remainingBlocks = layout.keyBlocks() - (kb + 1);
            int remainingCuts = shards - 1 - s;
            // Cut once this shard has its share, or when the blocks left are only just enough for one shard each.
            if ((seen * shards >= total * (s + 1L) || remainingBlocks == remainingCuts) && remainingBlocks >= remainingCuts) {
                boundaries[s++] = kb + 1;
            }
        }
        return at(problem, layout, boundaries);
    }

    /** @return {@code S} */
    public int count() {
        return firstBlock.length;
    }

    /** @return the first key block of shard {@code s} */
    public int firstBlock(int s) {
        return firstBlock[s];
    }

    /** @return one past the last key block of shard {@code s} */
    public int endBlock(int s) {
        return s + 1 < firstBlock.length ? firstBlock[s + 1] : layout.keyBlocks();
    }

    /** @return the first key of shard {@code s} */
    public int firstKey(int s) {
        return (int) Math.min(problem.keyLength(), (long) firstBlock[s] * layout.keyBlock());
    }

    /** @return the number of keys of shard {@code s} */
    public int keyCount(int s) {
        return (int) Math.min(problem.keyLength(), (long) endBlock(s) * layout.keyBlock()) - firstKey(s);
    }

    /**
     * The problem of shard {@code s}: its keys only, the queries unchanged, key lengths cut to the
     * shard ({@code clamp(keyLength(b) − firstKey, 0, Nk')}) and the causal rule moved by
     * {@code firstKey} (the problem's causal flag is kept; a layout drawn causal keeps its flag too).
     *
     * @param s the shard
     * @return the problem
     */
    public AttentionProblem problem(int s) {
        int first = firstKey(s);
        int count = keyCount(s);
        AttentionProblem.Builder b = problem.toBuilder().keyLength(count);
        int[] lengths = new int[problem.batch()];
        for (int x = 0; x < lengths.length; x++) {
            lengths[x] = Math.max(0, Math.min(count, problem.keyLength(x) - first));
        }
        b.keyLengths(problem.hasKeyLengths() ? lengths : null);
        long shift = problem.causalShift() - first;
        if (shift < Integer.MIN_VALUE || shift > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("causal shift " + shift + " of shard " + s + " does not fit an int");
        }
        return b.causalShift((int) shift).build();
    }

    /**
     * The layout of shard {@code s}: the whole layout's pairs whose key block lies in the shard,
     * key blocks renumbered from the shard's first block, for {@code (Nq, keyCount(s))}.
     *
     * @param s the shard
     * @return the layout
     */
    public BlockLayout layout(int s) {
        int from = firstBlock(s);
        int to = endBlock(s);
        int heads = layout.heads();
        int[][] rowStart = new int[heads][];
        int[][] blocks = new int[heads][];
        int[][] counts = layout.hasCounts() ? new int[heads][] : null;
        for (int hl = 0; hl < heads; hl++) {
            int[] starts = new int[layout.queryBlocks() + 1];
            int n = 0;
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                for (int p = layout.rowBegin(hl, qb); p < layout.rowEnd(hl, qb); p++) {
                    int kb = layout.keyBlock(hl, p);
                    n += kb >= from && kb < to ? 1 : 0;
                }
                starts[qb + 1] = n;
            }
            int[] cols = new int[n];
            int[] cs = counts == null ? null : new int[n];
            int at = 0;
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                for (int p = layout.rowBegin(hl, qb); p < layout.rowEnd(hl, qb); p++) {
                    int kb = layout.keyBlock(hl, p);
                    if (kb >= from && kb < to) {
                        if (cs != null) {
                            cs[at] = layout.count(hl, p);
                        }
                        cols[at++] = kb - from;
                    }
                }
            }
            rowStart[hl] = starts;
            blocks[hl] = cols;
            if (counts != null) {
                counts[hl] = cs;
            }
        }
        return BlockLayout.ofCsr(layout.queryLength(), keyCount(s), layout.queryBlock(), layout.keyBlock(),
                layout.causal(), rowStart, blocks, counts, layout.drawnForHeads());
    }

    /**
     * The keys (or values) of shard {@code s}: a copy of positions {@code [firstKey, firstKey + keyCount)}
     * of every (batch, head), in BHSD order.
     *
     * @param keysOrValues {@code [B, Hkv, Nk, D]} of the whole problem. Not modified.
     * @param s the shard
     * @return a new tensor {@code [B, Hkv, keyCount(s), D]}
     */
    public Tensor slice(Tensor keysOrValues, int s) {
        if (keysOrValues.length() != problem.keyLength()) {
            throw new IllegalArgumentException("tensor " + keysOrValues.describe() + " does not hold the problem's "
                    + problem.keyLength() + " keys");
        }
        int first = firstKey(s);
        int count = keyCount(s);
        Tensor out = Tensor.zeros(TensorLayout.BHSD, keysOrValues.batch(), keysOrValues.heads(), count,
                keysOrValues.dim());
        out.copyFrom(keysOrValues.rows(first, count));
        return out;
    }

    /** @return the allowed blocks of shard {@code s} summed over the problem's query heads */
    public long allowedBlocks(int s) {
        BlockLayout l = layout(s);
        return l.nnzOverHeads(problem.queryHeads());
    }
}
