package dev.starling.api.pattern;

/**
 * A block-sparse attention pattern: a pure, deterministic function of {@code (Nq, Nk, heads)}
 * to a {@link BlockLayout} (DESIGN section 3). {@code heads} counts query heads; query head
 * {@code h} gets head layout {@code h} (or the shared one).
 *
 * <p>Patterns are written as text ({@link Patterns#parse}), e.g.
 * {@code bigbird(block=64, window=3, global=2, random=3, seed=0)}; {@link #text()} gives the
 * canonical text back, which parses to an equal pattern (except for an explicit layout built in
 * code, see {@link #text()}).
 */
public interface PatternSpec {

    /** @return block size in tokens, for queries and keys alike */
    int blockSize();

    /**
     * Materialises the layout.
     *
     * @param queryLength {@code Nq >= 1}
     * @param keyLength {@code Nk >= 1}
     * @param heads number of query heads {@code >= 1}
     * @param causal whether the causal mask applies: blocks wholly above the causal diagonal are
     *               dropped, random draws are taken only from blocks at or before the row, and
     *               the layout is marked causal. {@code causal(P)} is exactly {@code P} with this set.
     * @return the layout
     * @throws IllegalArgumentException if the pattern cannot be built for these lengths
     */
    BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal);

    /**
     * Materialises the layout without the causal mask.
     *
     * @return {@code layout(queryLength, keyLength, heads, false)}
     */
    default BlockLayout layout(int queryLength, int keyLength, int heads) {
        return layout(queryLength, keyLength, heads, false);
    }

    /**
     * The canonical text form, which {@link Patterns#parse} turns back into an equal pattern. The
     * one exception: an {@link ExplicitPattern} built from a matrix in code has no text form, and
     * this returns a description that does not parse.
     *
     * @return the text form
     */
    String text();
}
