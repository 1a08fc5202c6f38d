package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.ExplicitPattern;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Seeded cases that together cover every feature of DESIGN section 2 and every built-in
 * pattern of section 3: lengths that are and are not multiples of the block size (down to one
 * token), {@code Nq != Nk}, GQA and MQA, {@code Dv != D}, both tensor layouts, causal, key and
 * query lengths including a batch entry of length 0, huge logits, and rows with no allowed key.
 * Sizes are small so the float64 oracle stays fast.
 */
public final class CaseGenerator {

    private CaseGenerator() {
    }

    /** The built-in patterns at block 16, as text. */
    public static final List<String> PATTERNS = List.of(
            "dense(block=16)",
            "window(block=16, blocks=3)",
            "global(block=16, first=1, last=1)",
            "random(block=16, blocks=2, seed=7)",
            "bigbird(block=16, window=3, global=2, random=2, seed=1)",
            "longformer(block=16, window=3, global=[0, -1])",
            "fixed(block=16, local=3, global=1)",
            "strided(block=16, stride=3)",
            "causal(bigbird(block=16, window=3, global=1, random=2, seed=3))",
            "union(window(block=16, blocks=1), random(block=16, blocks=1, seed=5))");

    /**
     * The standard case list.
     *
     * @param seed base seed; each case's seed derives from it
     * @return the cases, each named after what it exercises
     */
    public static List<AttentionCase> standard(long seed) {
        List<AttentionCase> cases = new ArrayList<>();
        Random seeds = new Random(seed);
        AttentionProblem base = AttentionProblem.builder().batch(1).heads(2).length(100).headDim(16).build();
        for (String text : PATTERNS) {
            cases.add(normal("pattern " + text, seeds.nextLong(), base, Patterns.parse(text)));
        }
        PatternSpec bigbird = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=11)");
        cases.add(normal("explicit layout in code", seeds.nextLong(), base, explicit()));
        cases.add(normal("length multiple of block", seeds.nextLong(),
                base.toBuilder().length(128).build(), bigbird));
        cases.add(normal("one token", seeds.nextLong(), base.toBuilder().length(1).build(), bigbird));
        cases.add(normal("one token causal", seeds.nextLong(), base.toBuilder().length(1).causal(true).build(), bigbird));
        cases.add(normal("nq < nk", seeds.nextLong(),
                base.toBuilder().queryLength(40).keyLength(90).build(), bigbird));
        cases.add(normal("nq > nk", seeds.nextLong(),
                base.toBuilder().queryLength(90).keyLength(40).build(), bigbird));
        cases.add(normal("nq > nk causal (rows with no allowed key)", seeds.nextLong(),
                base.toBuilder().queryLength(90).keyLength(40).causal(true).build(), bigbird));
        cases.add(normal("nq < nk causal", seeds.nextLong(),
                base.toBuilder().queryLength(40).keyLength(90).causal(true).build(), bigbird));
        cases.add(normal("gqa hq=4 hkv=2", seeds.nextLong(), base.toBuilder().heads(4).kvHeads(2).build(), bigbird));
        cases.add(normal("mqa hq=4 hkv=1", seeds.nextLong(), base.toBuilder().heads(4).kvHeads(1).build(), bigbird));
        cases.add(normal("dv != d", seeds.nextLong(), base.toBuilder().headDim(12).valueDim(20).build(), bigbird));
        cases.add(normal("causal", seeds.nextLong(), base.toBuilder().causal(true).build(), bigbird));
        cases.add(normal("custom scale", seeds.nextLong(), base.toBuilder().scale(0.7f).build(), bigbird));
        cases.add(normal("key and query lengths with a zero entry", seeds.nextLong(),
                base.toBuilder().batch(3).keyLengths(100, 37, 0).queryLengths(63, 0, 100).build(), bigbird));
        cases.add(normal("key lengths causal", seeds.nextLong(),
                base.toBuilder().batch(2).keyLengths(50, 17).causal(true).build(), bigbird));
        cases.add(AttentionCase.random("bshd layout", seeds.nextLong(),
                base.toBuilder().heads(4).kvHeads(2).headDim(8).valueDim(12).build(), bigbird, TensorLayout.BSHD,
                AttentionCase.Values.NORMAL));
        cases.add(AttentionCase.random("bshd causal with lengths", seeds.nextLong(),
                base.toBuilder().batch(2).queryLength(70).keyLength(85).causal(true).keyLengths(85, 40)
                        .queryLengths(70, 33).build(), bigbird, TensorLayout.BSHD, AttentionCase.Values.NORMAL));
        // Scores around ±1e4: exact in float32 (integers times a power of two) but overflowing exp().
        cases.add(AttentionCase.random("huge logits", seeds.nextLong(),
                base.toBuilder().scale(16f).build(), bigbird, TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
        cases.add(AttentionCase.random("huge logits causal", seeds.nextLong(),
                base.toBuilder().scale(8f).causal(true).build(), Patterns.parse("dense(block=16)"), TensorLayout.BHSD,
                AttentionCase.Values.SMALL_INTEGERS));
        cases.add(normal("block 64 head dim 64", seeds.nextLong(),
                AttentionProblem.builder().heads(2).length(300).headDim(64).build(),
                Patterns.parse("bigbird(block=64, window=3, global=2, random=1)")));
        return cases;
    }

    private static AttentionCase normal(String name, long seed, AttentionProblem problem, PatternSpec pattern) {
        return AttentionCase.random(name, seed, problem, pattern, TensorLayout.BHSD, AttentionCase.Values.NORMAL);
    }

    /** A 7x7 block layout (100 tokens at block 16) with an empty row and a scattered row. */
    static ExplicitPattern explicit() {
        boolean[][] m = new boolean[7][7];
        for (int r = 0; r < 7; r++) {
            m[r][r] = r != 3;
            m[r][(r * 3 + 1) % 7] = r != 3;
        }
        m[5][0] = true;
        m[5][6] = true;
        return ExplicitPattern.of(16, m);
    }
}
