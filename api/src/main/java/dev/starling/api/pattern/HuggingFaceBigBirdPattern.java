package dev.starling.api.pattern;

/**
 * {@code bigbird_hf(block=64, random=3, mode=eval, seed=0, max_pos=4096)}: exactly the attention of
 * Hugging Face transformers' {@code BigBirdModel} with {@code attention_type="block_sparse"}
 * ({@code BigBirdBlockSparseAttention}), so that Starling reproduces a pretrained Hugging Face
 * BigBird checkpoint ({@code google/bigbird-roberta-base}, {@code -large}, {@code google/bigbird-pegasus-*}
 * run in transformers) to float32 rounding.
 *
 * <p>For {@code N} tokens and {@code n = ceil(N / block)} blocks (one global block at each end, a window of
 * 3 blocks, {@code r = random} random blocks {@code R(i)}), each query block's softmax runs over the
 * key-block <em>list</em> Hugging Face builds: {@code 0 .. n − 1} for query blocks {@code 0} and {@code n − 1};
 * {@code 0, 1, 2, n − 1, R(1)} for block 1; {@code 0, i − 1, i, i + 1, n − 1, R(i)} for {@code 2 <= i <= n − 3};
 * {@code 0, n − 3, n − 2, n − 1, R(n − 2)} for block {@code n − 2}. A block listed {@code c} times is counted
 * {@code c} times (the layout carries counts; a backend needs {@link dev.starling.api.Feature#BLOCK_COUNTS}).
 * The random blocks (the draw rules in full: {@code docs/bigbird-compatibility.md}):
 * <ul>
 *   <li>{@code mode=eval} (a model in {@code .eval()}, normal inference): every random block is block 0,
 *       so block 0 is counted {@code 1 + r} times in rows {@code 1 .. n − 2}; one layout for all heads,
 *       and the seed does not matter.</li>
 *   <li>{@code mode=train} (a model in {@code .train()}): the blocks {@code np.random.seed(seed)} then
 *       Hugging Face's rules draw (the paper's draw from the first 1,024 tokens of a {@code max_pos}
 *       mask for {@code N ∈ {1024, 3072, 4096}}, the plan of {@code _get_rand_attn_plan} otherwise), per
 *       head, heads in order from one stream. Hugging Face seeds with the layer index on every training
 *       forward, so {@code seed} is the layer index (0 for the first layer).</li>
 * </ul>
 * Like {@code BigBirdModel}, a sequence of {@code N <= (5 + 2r)·block} tokens gets full attention (a
 * dense layout). A length that is not a multiple of the block is drawn as Hugging Face draws its padded
 * length {@code n·block}; the keys past {@code N} do not exist in Starling, which is what Hugging Face's
 * {@code −10000} penalty on padded keys amounts to, and Hugging Face's padded query rows are dropped.
 * Batches padded to a common length: give Starling the padded tensors and the true lengths as key and
 * query lengths.
 *
 * <p>Self-attention only ({@code Nq == Nk}) and never causal: both are refused.
 */
public final class HuggingFaceBigBirdPattern extends FaithfulBigBirdPattern {
    /** Hugging Face's module mode, which decides the random blocks. */
    public enum Mode {
        /** {@code model.eval()}: every random block is block 0. */
        EVAL,
        /** {@code model.train()}: the blocks NumPy draws. */
        TRAIN
    }

    private final Mode mode;

    /**
     * @param block block size in tokens ({@code config.block_size})
     * @param random random blocks per row {@code >= 0} ({@code config.num_random_blocks})
     * @param mode {@link Mode#EVAL} or {@link Mode#TRAIN}
     * @param seed the layer index, {@code 0 .. 2^32 − 1}
     * @param maxPos {@code config.max_position_embeddings} {@code >= 1}
     */
    public HuggingFaceBigBirdPattern(int block, int random, Mode mode, long seed, int maxPos) {
        super(block, random, seed, maxPos);
        if (mode == null) {
            throw new IllegalArgumentException("mode must be EVAL or TRAIN, got null");
        }
        this.mode = mode;
    }

    /** @return Hugging Face's defaults as in {@code google/bigbird-roberta-base}, first layer, eval mode */
    public static HuggingFaceBigBirdPattern defaults() {
        return new HuggingFaceBigBirdPattern(64, 3, Mode.EVAL, 0, 4096);
    }

    /** @return the mode */
    public Mode mode() {
        return mode;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if {@code Nq != Nk}, if causal, if {@code max_pos} is too small for a
     *         paper length, or where Hugging Face's own code fails (too few blocks to draw from)
     */
    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        return BigBirdDraws.layout(BigBirdDraws.Library.HUGGING_FACE, text(), queryLength, keyLength, heads, causal,
                block, random, seed, maxPos, mode == Mode.TRAIN, true);
    }

    @Override
    public String text() {
        return "bigbird_hf(block=" + block + ", random=" + random + ", mode=" + mode.name().toLowerCase(java.util.Locale.ROOT)
                + ", seed=" + seed + ", max_pos=" + maxPos + ")";
    }
}
