package dev.starling.api.plan;

import dev.starling.api.AttentionProblem;
import dev.starling.api.pattern.BlockLayout;

/**
 * Which keys each query row may read, at token level (DESIGN sections 2 and 3b): the one place
 * where the causal rule, key and query lengths and partial tail blocks are written down.
 *
 * <p>A query row {@code i} of batch entry {@code b} and query head {@code h} may read key
 * {@code j} when all of these hold:
 * <ul>
 *   <li>{@code i < queryLength(b)} (padded query rows read nothing and get {@code O = 0},
 *       {@code LSE = −∞});</li>
 *   <li>{@code j < keyLength(b)} (padded keys are never read);</li>
 *   <li>with causal, {@code j <= i + shift}, {@code shift = Nk − Nq} unless set ({@link #causalKeyEnd},
 *       aligned bottom-right);</li>
 *   <li>the layout allows key block {@code j / keyBlock} for query block {@code i / queryBlock}.</li>
 * </ul>
 * A layout entry with a count {@code c > 1} (block multiplicity, DESIGN section 2) weighs its keys
 * {@code c} times: {@link #logWeight(int, int)} gives the {@code ln c} a kernel adds to their scores.
 * The first three depend on {@code (b, i)} only and cut every key block to a prefix, so hot loops
 * never test pairs: they ask for the half-open range {@code [keyBegin(kb), keyEnd(b, i, kb))} of a
 * row, or {@code [keyBegin(kb), blockKeyEnd(b, qb, kb))} of a whole query block. The causal flag is
 * resolved once: the problem's or the layout's (a layout drawn from {@code causal(P)}).
 *
 * <p>Immutable and thread-safe; it holds the problem and the layout, nothing of size {@code N}.
 */
public final class TokenMask {
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final boolean causal;
    private final int queryLength;
    private final int keyLength;
    private final int queryBlock;
    private final int keyBlock;

    private TokenMask(AttentionProblem problem, BlockLayout layout) {
        this.problem = problem;
        this.layout = layout;
        this.causal = problem.causal() || layout.causal();
        this.queryLength = problem.queryLength();
        this.keyLength = problem.keyLength();
        this.queryBlock = layout.queryBlock();
        this.keyBlock = layout.keyBlock();
    }

    /**
     * The mask of a problem over a layout built for it.
     *
     * @param problem the problem. Not modified.
     * @param layout the layout, built for the problem's lengths and query heads. Not modified.
     * @return the mask
     * @throws IllegalArgumentException if the problem is null or the layout does not fit it
     */
    public static TokenMask of(AttentionProblem problem, BlockLayout layout) {
        if (problem == null) {
            throw new IllegalArgumentException("problem must not be null");
        }
        problem.checkLayout(layout);
        return new TokenMask(problem, layout);
    }

    /**
     * The mask of a layout alone, for tools that count work without tensors: batch 1,
     * {@code heads} query and key/value heads, no key or query lengths, head dim 1.
     *
     * @param layout the layout. Not modified.
     * @param heads query heads (the layout's head count unless it is shared)
     * @return the mask
     */
    public static TokenMask of(BlockLayout layout, int heads) {
        if (layout == null) {
            throw new IllegalArgumentException("layout must not be null");
        }
        AttentionProblem problem = AttentionProblem.builder().heads(heads).queryLength(layout.queryLength())
                .keyLength(layout.keyLength()).headDim(1).build();
        return of(problem, layout);
    }

    /**
     * The causal rule, written once: query row {@code i} may read keys {@code j <= i + shift}.
     *
     * @param i query row
     * @param shift the problem's {@link AttentionProblem#causalShift()}: {@link #bottomRightShift} unless a key
     *              shard moved it
     * @param keyLength {@code Nk}
     * @return the exclusive end of the keys row {@code i} may read by the causal rule alone, clamped to
     *         {@code [0, Nk]}
     */
    public static int causalKeyEnd(int i, long shift, int keyLength) {
        long end = (long) i + shift + 1;
        return (int) Math.max(0, Math.min(keyLength, end));
    }

    /**
     * The default shift of the causal rule: {@code Nk − Nq}, aligning the last query with the last
     * key (bottom-right, as FlashAttention does when {@code Nq != Nk}).
     *
     * @param queryLength {@code Nq}
     * @param keyLength {@code Nk}
     * @return {@code Nk − Nq}
     */
    public static long bottomRightShift(int queryLength, int keyLength) {
        return (long) keyLength - queryLength;
    }

    /** @return the problem */
    public AttentionProblem problem() { return problem; }
    /** @return the layout */
    public BlockLayout layout() { return layout; }
    /** @return whether the causal rule applies: the problem or the layout asks for it */
    public boolean causal() { return causal; }

    /** @return first query row of query block {@code qb} */
    public int queryBegin(int qb) {
        return (int) Math.min(queryLength, (long) qb * queryBlock);
    }

    /** @return one past the last query row of query block {@code qb} (a tail block is partial) */
    public int queryEnd(int qb) {
        return (int) Math.min(queryLength, ((long) qb + 1) * queryBlock);
    }

    /**
     * @return one past the last row of query block {@code qb} that batch entry {@code b} computes:
     *         rows {@code [validQueryEnd, queryEnd)} are padding ({@code O = 0}, {@code LSE = −∞})
     */
    public int validQueryEnd(int b, int qb) {
        return Math.max(queryBegin(qb), Math.min(queryEnd(qb), problem.queryLength(b)));
    }

    /** @return first key of key block {@code kb} */
    public int keyBegin(int kb) {
        return (int) Math.min(keyLength, (long) kb * keyBlock);
    }

    /** @return one past the last key of key block {@code kb} (a tail block is partial) */
    public int keyEnd(int kb) {
        return (int) Math.min(keyLength, ((long) kb + 1) * keyBlock);
    }

    /**
     * Exclusive end of the keys row {@code i} of batch entry {@code b} may read by key length and
     * the causal rule (the layout aside).
     *
     * @param b batch entry
     * @param i query row, {@code < queryLength(b)}
     * @return {@code min(keyLength(b), causalKeyEnd(i))}
     */
    public int rowKeyEnd(int b, int i) {
        int end = problem.keyLength(b);
        return causal ? Math.min(end, causalKeyEnd(i, problem.causalShift(), keyLength)) : end;
    }

    /**
     * The keys of key block {@code kb} that row {@code i} of batch entry {@code b} may read, given
     * the layout allows the block: {@code [keyBegin(kb), keyEnd(b, i, kb))}, empty when the end is
     * not above the begin.
     *
     * @return the exclusive end, possibly {@code <= keyBegin(kb)}
     */
    public int keyEnd(int b, int i, int kb) {
        return Math.min(keyEnd(kb), rowKeyEnd(b, i));
    }

    /**
     * The keys of key block {@code kb} that some valid row of query block {@code qb} may read:
     * {@code [keyBegin(kb), blockKeyEnd(b, qb, kb))}. Rows end at or before it (the bound grows
     * with the row), so this is the part of a key block a kernel loads.
     *
     * @return the exclusive end, possibly {@code <= keyBegin(kb)} when no row reads the block
     */
    public int blockKeyEnd(int b, int qb, int kb) {
        int last = validQueryEnd(b, qb) - 1;
        return last < queryBegin(qb) ? keyBegin(kb) : keyEnd(b, last, kb);
    }

    /**
     * Whether every valid row of query block {@code qb} reads exactly the keys
     * {@code [keyBegin(kb), blockKeyEnd(b, qb, kb))}: then a kernel needs no per-row mask for the
     * block (only causal diagonal blocks need one).
     *
     * @return whether the block is uniform for batch entry {@code b}
     */
    public boolean uniform(int b, int qb, int kb) {
        int first = queryBegin(qb);
        return validQueryEnd(b, qb) == first || keyEnd(b, first, kb) == blockKeyEnd(b, qb, kb);
    }

    /**
     * The per-element predicate of DESIGN section 2: whether key {@code j} is in the allowed set
     * {@code A(b, h, i)}. Kernels use the ranges above; the dense oracle uses this.
     *
     * @param b batch entry
     * @param h query head
     * @param i query row in {@code [0, Nq)}
     * @param j key in {@code [0, Nk)}
     * @return whether {@code (i, j)} is allowed
     */
    public boolean allowed(int b, int h, int i, int j) {
        if (i >= problem.queryLength(b) || j >= rowKeyEnd(b, i)) {
            return false;
        }
        return layout.allowed(h, i / queryBlock, j / keyBlock);
    }

    /**
     * The block-multiplicity rule of DESIGN section 2, written once: an entry of count {@code c} weighs every
     * key of its block {@code c} times in the softmax, i.e. {@code ln c} is added to those keys' scores (after
     * the scale, before the maximum and the exponential). Kernels add it once per block, and only when it is
     * not 0, so layouts without counts run exactly as before.
     *
     * @param count the entry's count, {@code >= 1}
     * @return {@code ln count}: exactly 0 for a count of 1
     */
    public static double logWeight(int count) {
        return count == 1 ? 0.0 : Math.log(count);
    }

    /**
     * @param h query head
     * @param p CSR position in the layout ({@link BlockLayout#rowBegin} .. {@link BlockLayout#rowEnd})
     * @return the log-weight {@link #logWeight(int) ln c} of every key of entry {@code p}'s block (0 without counts)
     */
    public double logWeight(int h, int p) {
        return layout.hasCounts() ? logWeight(layout.count(h, p)) : 0.0;
    }

    /**
     * The per-element log-weight the dense oracle adds to a score: {@code −∞} when {@code (i, j)} is not
     * {@link #allowed allowed}, else {@code ln c} of the layout entry holding key {@code j}'s block.
     *
     * @param b batch entry
     * @param h query head
     * @param i query row in {@code [0, Nq)}
     * @param j key in {@code [0, Nk)}
     * @return {@code −∞}, or the log-weight ({@code 0} for a count of 1)
     */
    public double logWeight(int b, int h, int i, int j) {
        if (i >= problem.queryLength(b) || j >= rowKeyEnd(b, i)) {
            return Double.NEGATIVE_INFINITY;
        }
        int p = layout.entry(h, i / queryBlock, j / keyBlock);
        return p < 0 ? Double.NEGATIVE_INFINITY : logWeight(h, p);
    }

    /** @return index of row {@code (b, h, i)} in {@code LSE [B, Hq, Nq]} */
    public int lseIndex(int b, int h, int i) {
        return (b * problem.queryHeads() + h) * queryLength + i;
    }

    /**
     * Number of allowed {@code (query, key)} pairs {@code P}, summed over batch entries and query
     * heads, with every token-level rule applied.
     *
     * @return {@code P}
     */
    public long allowedPairs() {
        boolean perBatch = problem.hasKeyLengths() || problem.hasQueryLengths();
        long total = 0;
        for (int b = 0; b < (perBatch ? problem.batch() : 1); b++) {
            long perHeadLayout = -1;
            for (int h = 0; h < problem.queryHeads(); h++) {
                if (!layout.isShared() || perHeadLayout < 0) {
                    perHeadLayout = allowedPairs(b, h);
                }
                total += perHeadLayout;
            }
        }
        return perBatch ? total : total * problem.batch();
    }

    /** @return allowed pairs of batch entry {@code b}, query head {@code h} */
    public long allowedPairs(int b, int h) {
        long pairs = 0;
        for (int qb = 0; qb < layout.queryBlocks(); qb++) {
            int i0 = queryBegin(qb);
            int i1 = validQueryEnd(b, qb);
            for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb) && i1 > i0; p++) {
                int kb = layout.keyBlock(h, p);
                int j0 = keyBegin(kb);
                if (uniform(b, qb, kb)) {
                    pairs += (long) (i1 - i0) * Math.max(0, blockKeyEnd(b, qb, kb) - j0);
                } else {
                    for (int i = i0; i < i1; i++) {
                        pairs += Math.max(0, keyEnd(b, i, kb) - j0);
                    }
                }
            }
        }
        return pairs;
    }

    /**
     * Useful floating-point work of one forward call (DESIGN section 7): {@code 2·(D + Dv)·P}.
     *
     * @return the operation count
     */
    public double usefulFlops() {
        return usefulFlops(problem, allowedPairs());
    }

    /**
     * The useful-work count of DESIGN section 7, in one place: {@code 2·(D + Dv)·P} floating-point
     * operations for {@code P} allowed pairs (for dense attention, {@code P = B·Hq·Nq·Nk}).
     *
     * @param problem gives {@code D} and {@code Dv}
     * @param pairs {@code P}
     * @return the operation count
     */
    public static double usefulFlops(AttentionProblem problem, long pairs) {
        return 2.0 * ((long) problem.headDim() + problem.valueDim()) * pairs;
    }
}
