package dev.starling.api.pattern;

/**
 * {@code bigbird_google(block=64, random=3, seed=0, max_pos=4096)}: exactly the block-sparse attention of
 * Google's original BigBird code ({@code bigbird/core/attention.py}, {@code MultiHeadedAttentionLayer}
 * with {@code attention_type="block_sparse"}), so that Starling reproduces a checkpoint as Google's
 * TensorFlow code runs it.
 *
 * <p>The key-block lists are those of {@link HuggingFaceBigBirdPattern} (a block listed {@code c} times is
 * counted {@code c} times), but the random blocks are drawn once, when the layer is built, with
 * {@code np.random.seed(seed)} ({@code seed} = the layer index) and used for training and inference alike:
 * the paper's draw (from the first 1,024 tokens of a {@code MAX_SEQ_LEN = max_pos} mask) for
 * {@code N ∈ {1024, 2048, 3072, 4096}}, the plan of {@code get_rand_attn_plan} otherwise. At 1,024,
 * 3,072 and 4,096 tokens this is the same draw as Hugging Face's train mode; at 2,048 Google draws from
 * blocks 1 … 15 where Hugging Face's plan draws from 1 … 9. Google's code has no full-attention switch:
 * short sequences keep the block-sparse structure (and lengths whose rows have too few blocks to draw
 * from are refused, as the Python code fails on them). Lengths that are not a multiple of the block are
 * drawn for the padded length {@code ceil(N / block)·block}; keys past {@code N} do not exist.
 *
 * <p>Self-attention only ({@code Nq == Nk}) and never causal: both are refused.
 */
public final class GoogleBigBirdPattern extends FaithfulBigBirdPattern {

    /**
     * @param block block size in tokens
     * @param random random blocks per row {@code >= 0}
     * @param seed the layer index, {@code 0 .. 2^32 − 1}
     * @param maxPos Google's {@code MAX_SEQ_LEN} (4096 in its code) {@code >= 1}
     */
    public GoogleBigBirdPattern(int block, int random, long seed, int maxPos) {
        super(block, random, seed, maxPos);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if {@code Nq != Nk}, if causal, if {@code max_pos} is too small for a
     *         paper length, for fewer than 4 blocks, or where Google's own code fails (too few blocks to draw from)
     */
    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        return BigBirdDraws.layout(BigBirdDraws.Library.GOOGLE, text(), queryLength, keyLength, heads, causal,
                block, random, seed, maxPos, true, false);
    }

    @Override
    public String text() {
        return "bigbird_google(block=" + block + ", random=" + random + ", seed=" + seed + ", max_pos=" + maxPos + ")";
    }
}
