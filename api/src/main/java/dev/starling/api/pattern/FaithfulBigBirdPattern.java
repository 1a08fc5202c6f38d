package dev.starling.api.pattern;

import dev.starling.api.pattern.numpy.NumpyLegacyRandom;

/**
 * What {@link HuggingFaceBigBirdPattern} and {@link GoogleBigBirdPattern} share: their parameters,
 * their checks and their identity (the canonical text). The rules themselves are in {@link BigBirdDraws}.
 */
abstract sealed class FaithfulBigBirdPattern implements PatternSpec
        permits HuggingFaceBigBirdPattern, GoogleBigBirdPattern {
    final int block;
    final int random;
    final long seed;
    final int maxPos;

    FaithfulBigBirdPattern(int block, int random, long seed, int maxPos) {
        this.block = BlockPattern.requireAtLeast("block", block, 1);
        this.random = BlockPattern.requireAtLeast("random", random, 0);
        this.seed = NumpyLegacyRandom.checkSeed(seed);
        this.maxPos = BlockPattern.requireAtLeast("max_pos", maxPos, 1);
    }

    @Override
    public final int blockSize() {
        return block;
    }

    @Override
    public final String toString() {
        return text();
    }

    @Override
    public final boolean equals(Object o) {
        return o != null && o.getClass() == getClass() && ((PatternSpec) o).text().equals(text());
    }

    @Override
    public final int hashCode() {
        return text().hashCode();
    }
}
