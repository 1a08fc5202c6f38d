package dev.starling.api.pattern;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;

/** The built-in pattern names of DESIGN section 3, as {@link PatternProvider}s. */
final class BuiltinPatterns {

    private BuiltinPatterns() {
    }

    private record Builtin(String name, String form, Function<PatternArguments, PatternSpec> factory)
            implements PatternProvider {
        @Override
        public PatternSpec create(PatternArguments args) {
            return factory.apply(args);
        }
    }

    static List<PatternProvider> all() {
        return List.of(
                new Builtin("dense", "dense(block=64)", a -> new DensePattern(a.intValue("block", 64))),
                new Builtin("window", "window(block=64, blocks=3)",
                        a -> new WindowPattern(a.intValue("block", 64), a.intValue("blocks", 3))),
                new Builtin("global", "global(block=64, first=1, last=1)",
                        a -> new GlobalPattern(a.intValue("block", 64), a.intValue("first", 1), a.intValue("last", 1))),
                new Builtin("random", "random(block=64, blocks=3, seed=0)",
                        a -> new RandomPattern(a.intValue("block", 64), a.intValue("blocks", 3), a.longValue("seed", 0))),
                new Builtin("bigbird", "bigbird(block=64, window=3, global=2, random=3, seed=0)",
                        a -> new BigBirdPattern(a.intValue("block", 64), a.intValue("window", 3), a.intValue("global", 2),
                                a.intValue("random", 3), a.longValue("seed", 0))),
                new Builtin("bigbird_hf", "bigbird_hf(block=64, random=3, mode=eval, seed=0, max_pos=4096)",
                        a -> new HuggingFaceBigBirdPattern(a.intValue("block", 64), a.intValue("random", 3),
                                HuggingFaceBigBirdPattern.Mode.valueOf(a.choice("mode", "eval", "eval", "train")
                                        .toUpperCase(java.util.Locale.ROOT)),
                                a.longValue("seed", 0), a.intValue("max_pos", 4096))),
                new Builtin("bigbird_google", "bigbird_google(block=64, random=3, seed=0, max_pos=4096)",
                        a -> new GoogleBigBirdPattern(a.intValue("block", 64), a.intValue("random", 3),
                                a.longValue("seed", 0), a.intValue("max_pos", 4096))),
                new Builtin("longformer", "longformer(block=64, window=3, global=[0])",
                        a -> new LongformerPattern(a.intValue("block", 64), a.intValue("window", 3),
                                a.intList("global", new int[] {0}))),
                new Builtin("fixed", "fixed(block=64, local=4, global=1)",
                        a -> new FixedPattern(a.intValue("block", 64), a.intValue("local", 4), a.intValue("global", 1))),
                new Builtin("strided", "strided(block=64, stride=8)",
                        a -> new StridedPattern(a.intValue("block", 64), a.intValue("stride", 8))),
                new Builtin("causal", "causal(P)", a -> new CausalPattern(a.patterns(1, 1).get(0))),
                new Builtin("union", "union(P, Q, ...)", a -> new UnionPattern(a.patterns(1, Integer.MAX_VALUE))),
                new Builtin("layout", "layout(file=mask.npy, block=64)",
                        a -> ExplicitPattern.fromFile(Path.of(a.string("file")), a.intValue("block", 64))));
    }
}
