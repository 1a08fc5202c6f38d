package dev.starling.api.pattern;

import java.util.Objects;

/**
 * {@code causal(P)}: pattern {@code P} under the token-level causal mask. Its layout is exactly
 * {@code P.layout(Nq, Nk, heads, true)}, so a problem marked causal with pattern {@code P} and
 * pattern {@code causal(P)} compute the same thing, random draws included.
 */
public final class CausalPattern implements PatternSpec {
    private final PatternSpec inner;

    /** @param inner the pattern to mask */
    public CausalPattern(PatternSpec inner) {
        this.inner = Objects.requireNonNull(inner, "inner");
    }

    /** @return the masked pattern */
    public PatternSpec inner() {
        return inner;
    }

    @Override
    public int blockSize() {
        return inner.blockSize();
    }

    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        return inner.layout(queryLength, keyLength, heads, true);
    }

    @Override
    public String text() {
        return "causal(" + inner.text() + ")";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CausalPattern c && c.inner.equals(inner);
    }

    @Override
    public int hashCode() {
        return 31 + inner.hashCode();
    }

    @Override
    public String toString() {
        return text();
    }
}
