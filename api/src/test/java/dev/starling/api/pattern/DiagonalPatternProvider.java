package dev.starling.api.pattern;

/** A third-party pattern name registered through ServiceLoader in test resources. */
public class DiagonalPatternProvider implements PatternProvider {
    @Override
    public String name() {
        return "diagonal";
    }

    @Override
    public String form() {
        return "diagonal(block=64)";
    }

    @Override
    public PatternSpec create(PatternArguments args) {
        return new WindowPattern(args.intValue("block", 64), 1);
    }
}
