package dev.starling.api.pattern;

/** Pattern providers that must not be used: a taken name, a built-in name, no name. */
public final class ConflictingPatternProviders {

    private ConflictingPatternProviders() {
    }

    /** Takes the name of {@link DiagonalPatternProvider}, which comes first on the class path. */
    public static class AnotherDiagonal extends DiagonalPatternProvider {
    }

    /** Takes a built-in name. */
    public static class BigBirdImpostor extends DiagonalPatternProvider {
        @Override
        public String name() {
            return "bigbird";
        }
    }

    /** Has no name. */
    public static class Nameless extends DiagonalPatternProvider {
        @Override
        public String name() {
            return null;
        }
    }
}
