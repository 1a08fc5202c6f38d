package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.ExplicitPattern;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Seeded cases that together cover every feature of DESIGN section 2 and every built-in
 * pattern of section 3, grouped by the feature they exercise so that a conformance rule can run
 * exactly the cases of its feature. Sizes are small so the float64 oracle stays fast. The same
 * seed always gives the same cases; each case carries its own seed for replay.
 */
public final class CaseGenerator {
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
            "union(window(block=16, blocks=1), random(block=16, blocks=1, seed=5))");

    /** The kinds cases are grouped by; each conformance rule runs one or more kinds. */
    public enum CaseKind {
        /** Every built-in pattern, lengths that are multiples of the block, Nq != Nk, Dv != D, custom scale. */
        CORE,
        /** Lengths that are not multiples of the block size, down to one token. */
        TAILS,
        /** The causal mask, including rows left with no key. */
        CAUSAL,
        /** Grouped-query and multi-query attention. */
        GROUPED_QUERY,
        /** Per-batch key and query lengths, including a batch entry of length 0. */
        LENGTHS,
        /** Scores around ±1e4 that overflow a softmax without the max shift. */
        HUGE_LOGITS,
        /**
         * Scores from about {@code 1e9} to {@code 1e30} (rule 43): small integers and a power-of-two scale,
         * so every score is exact in float32, with keys in identical pairs, so every row's maximum is a
         * tie (weights 1/2, whose LSE {@code m + ln 2} float32 cannot tell from {@code m}).
         */
        LARGE_LOGITS,
        /** Rows with no allowed key. */
        EMPTY_ROWS,
        /** BSHD inputs and outputs. */
        TENSOR_LAYOUTS,
        /**
         * Finite inputs into which the non-finite rule writes one NaN or infinity at a time: tail blocks
         * (a one-key tail block), GQA with {@code Dv != D}, causal, key and query lengths, an explicit
         * layout with an empty row and an unseen key block, both tensor layouts.
         */
        NON_FINITE,
        /**
         * Layouts the merge rule splits into disjoint key-block sets: tails, GQA with {@code Dv != D},
         * causal (problem and pattern, rows with no key), key lengths, a shared layout, both tensor layouts.
         */
        KEY_SPLITS,
        /**
         * Problems the shard rule cuts into contiguous key shards computed on their own keys: every
         * built-in pattern, tails, GQA with {@code Dv != D}, causal ({@code Nq < Nk}, {@code Nq > Nk},
         * a {@code causal(P)} layout), key and query lengths, causal with key lengths, both tensor layouts.
         */
        KEY_SHARDS
    }

    private static final PatternSpec BIGBIRD = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=11)");
    /** BigBird at block 8: about 13 key blocks, of which a row reads 5, so most rows miss a given key. */
    private static final PatternSpec SPARSE_BIGBIRD = Patterns.parse("bigbird(block=8, window=3, global=1, random=1, seed=5)");
    private static final AttentionProblem BASE = AttentionProblem.builder().batch(1).heads(2).length(96).headDim(16).build();

    private CaseGenerator() {
    }

    /** {@code c} with each odd key a copy of the even key before it, so keys come in identical pairs. */
    private static AttentionCase tiedKeys(AttentionCase c) {
        Tensor k = c.k();
        for (int b = 0; b < k.batch(); b++) {
            for (int h = 0; h < k.heads(); h++) {
                for (int j = 1; j < k.length(); j += 2) {
                    System.arraycopy(k.data(), k.offset(b, h, j - 1), k.data(), k.offset(b, h, j), k.dim());
                }
            }
        }
        return c;
    }

    /**
     * The cases of one feature.
     *
     * @param feature the feature
     * @param seed base seed
     * @param precision precision set on every problem
     * @return the cases, each named after what it exercises
     */
    public static List<AttentionCase> cases(CaseKind feature, long seed, Precision precision) {
        Random seeds = new Random(seed * 31 + feature.ordinal());
        List<AttentionCase> c = new ArrayList<>();
        AttentionProblem base = BASE.toBuilder().precision(precision).build();
        switch (feature) {
            case CORE -> {
                for (String text : PATTERNS) {
                    c.add(normal("pattern " + text, seeds, base, Patterns.parse(text)));
                }
                c.add(normal("nq < nk", seeds, base.toBuilder().queryLength(48).keyLength(128).build(), BIGBIRD));
                c.add(normal("nq > nk", seeds, base.toBuilder().queryLength(128).keyLength(48).build(), BIGBIRD));
                c.add(normal("dv != d", seeds, base.toBuilder().headDim(12).valueDim(20).build(), BIGBIRD));
                c.add(normal("custom scale", seeds, base.toBuilder().scale(0.7f).build(), BIGBIRD));
                c.add(normal("batch 2", seeds, base.toBuilder().batch(2).build(), BIGBIRD));
                c.add(normal("block 64 head dim 64", seeds,
                        AttentionProblem.builder().heads(2).length(320).headDim(64).precision(precision).build(),
                        Patterns.parse("bigbird(block=64, window=3, global=2, random=1)")));
            }
            case TAILS -> {
                c.add(normal("length 100 at block 16", seeds, base.toBuilder().length(100).build(), BIGBIRD));
                c.add(normal("one token", seeds, base.toBuilder().length(1).build(), BIGBIRD));
                c.add(normal("nq 37 nk 90", seeds, base.toBuilder().queryLength(37).keyLength(90).build(), BIGBIRD));
                c.add(normal("nq 90 nk 37", seeds, base.toBuilder().queryLength(90).keyLength(37).build(), BIGBIRD));
                c.add(normal("dense tail", seeds, base.toBuilder().length(53).build(), Patterns.parse("dense(block=16)")));
                c.add(normal("block 64 tail", seeds,
                        AttentionProblem.builder().heads(2).length(300).headDim(64).precision(precision).build(),
                        Patterns.parse("bigbird(block=64, window=3, global=2, random=1)")));
            }
            case CAUSAL -> {
                c.add(normal("causal", seeds, base.toBuilder().causal(true).build(), BIGBIRD));
                c.add(normal("causal tail", seeds, base.toBuilder().length(100).causal(true).build(), BIGBIRD));
                c.add(normal("causal nq < nk", seeds, base.toBuilder().queryLength(40).keyLength(90).causal(true).build(), BIGBIRD));
                c.add(normal("causal nq > nk (rows with no key)", seeds,
                        base.toBuilder().queryLength(90).keyLength(40).causal(true).build(), BIGBIRD));
                c.add(normal("causal(P) pattern", seeds, base,
                        Patterns.parse("causal(bigbird(block=16, window=3, global=1, random=2, seed=3))")));
                c.add(normal("causal one token", seeds, base.toBuilder().length(1).causal(true).build(), BIGBIRD));
            }
            case GROUPED_QUERY -> {
                c.add(normal("gqa hq=4 hkv=2", seeds, base.toBuilder().heads(4).kvHeads(2).build(), BIGBIRD));
                c.add(normal("mqa hq=4 hkv=1", seeds, base.toBuilder().heads(4).kvHeads(1).build(), BIGBIRD));
            }
            case LENGTHS -> {
                c.add(normal("key and query lengths with zero entries", seeds,
                        base.toBuilder().batch(3).keyLengths(96, 37, 0).queryLengths(63, 0, 96).build(), BIGBIRD));
                c.add(normal("key lengths", seeds, base.toBuilder().batch(2).keyLengths(50, 17).build(), BIGBIRD));
                c.add(normal("query lengths", seeds, base.toBuilder().batch(2).queryLengths(1, 95).build(), BIGBIRD));
            }
            case HUGE_LOGITS -> {
                // Scores around ±1e4: exact in float32 (integers times a power of two) but overflowing exp().
                c.add(AttentionCase.random("huge logits", seeds.nextLong(), base.toBuilder().scale(16f).build(), BIGBIRD,
                        TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
                c.add(AttentionCase.random("huge negative logits", seeds.nextLong(), base.toBuilder().scale(-16f).build(),
                        Patterns.parse("dense(block=16)"), TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
            }
            case LARGE_LOGITS -> {
                c.add(tiedKeys(AttentionCase.random("large logits to 1e9 (scale 2^20), tied keys", seeds.nextLong(),
                        base.toBuilder().scale(0x1p20f).build(), BIGBIRD, TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS)));
                c.add(AttentionCase.random("large logits to 1e15 (scale 2^40)", seeds.nextLong(),
                        base.toBuilder().scale(0x1p40f).build(), Patterns.parse("dense(block=16)"), TensorLayout.BHSD,
                        AttentionCase.Values.SMALL_INTEGERS));
                c.add(tiedKeys(AttentionCase.random("large negative logits to -1e12 (scale -2^30), tied keys, tail",
                        seeds.nextLong(), base.toBuilder().length(90).scale(-0x1p30f).build(), BIGBIRD, TensorLayout.BSHD,
                        AttentionCase.Values.SMALL_INTEGERS)));
                c.add(tiedKeys(AttentionCase.random("large logits to 1e30 (scale 2^90), tied keys", seeds.nextLong(),
                        base.toBuilder().scale(0x1p90f).build(), Patterns.parse("dense(block=16)"), TensorLayout.BHSD,
                        AttentionCase.Values.SMALL_INTEGERS)));
            }
            case EMPTY_ROWS -> c.add(normal("explicit layout with an empty row", seeds, base, emptyRowLayout()));
            case TENSOR_LAYOUTS -> {
                c.add(AttentionCase.random("bshd", seeds.nextLong(), base.toBuilder().headDim(8).valueDim(12).build(),
                        BIGBIRD, TensorLayout.BSHD, AttentionCase.Values.NORMAL));
                c.add(AttentionCase.random("bshd tail batch 2", seeds.nextLong(),
                        base.toBuilder().batch(2).queryLength(70).keyLength(85).build(), BIGBIRD, TensorLayout.BSHD,
                        AttentionCase.Values.NORMAL));
            }
            case NON_FINITE -> {
                c.add(normal("sparse bigbird nq 90 nk 97 (one-key tail block)", seeds,
                        base.toBuilder().queryLength(90).keyLength(97).build(), SPARSE_BIGBIRD));
                c.add(AttentionCase.random("gqa hq=4 hkv=2 dv != d tail", seeds.nextLong(),
                        base.toBuilder().heads(4).kvHeads(2).length(75).headDim(12).valueDim(20).build(), SPARSE_BIGBIRD,
                        TensorLayout.BSHD, AttentionCase.Values.NORMAL));
                c.add(normal("causal tail", seeds, base.toBuilder().length(100).causal(true).build(), SPARSE_BIGBIRD));
                c.add(AttentionCase.random("causal nq 70 nk 45 (rows with no key)", seeds.nextLong(),
                        base.toBuilder().queryLength(70).keyLength(45).causal(true).build(), SPARSE_BIGBIRD, TensorLayout.BSHD,
                        AttentionCase.Values.NORMAL));
                c.add(normal("key lengths", seeds, base.toBuilder().batch(2).length(97).keyLengths(61, 97).build(), SPARSE_BIGBIRD));
                c.add(AttentionCase.random("query lengths", seeds.nextLong(),
                        base.toBuilder().batch(2).length(64).headDim(8).queryLengths(40, 0).build(), SPARSE_BIGBIRD,
                        TensorLayout.BSHD, AttentionCase.Values.NORMAL));
                c.add(AttentionCase.random("explicit layout with an empty row and an unseen key block", seeds.nextLong(),
                        base, emptyRowLayout(), TensorLayout.BSHD, AttentionCase.Values.NORMAL));
            }
            case KEY_SPLITS -> {
                c.add(normal("bigbird nq 90 nk 100", seeds, base.toBuilder().queryLength(90).keyLength(100).build(), BIGBIRD));
                c.add(AttentionCase.random("gqa hq=4 hkv=2 dv != d tail", seeds.nextLong(),
                        base.toBuilder().heads(4).kvHeads(2).length(75).headDim(12).valueDim(20).build(), BIGBIRD,
                        TensorLayout.BSHD, AttentionCase.Values.NORMAL));
                c.add(normal("causal nq 40 nk 90", seeds, base.toBuilder().queryLength(40).keyLength(90).causal(true).build(),
                        BIGBIRD));
                c.add(AttentionCase.random("causal(P) nq 90 nk 40 (rows with no key)", seeds.nextLong(),
                        base.toBuilder().queryLength(90).keyLength(40).build(),
                        Patterns.parse("causal(bigbird(block=16, window=3, global=1, random=2, seed=3))"), TensorLayout.BSHD,
                        AttentionCase.Values.NORMAL));
                c.add(normal("key lengths with a zero entry", seeds, base.toBuilder().batch(2).length(85).keyLengths(61, 0).build(),
                        BIGBIRD));
                c.add(normal("shared dense layout, tail", seeds, base.toBuilder().length(53).build(),
                        Patterns.parse("dense(block=16)")));
                c.add(normal("block 64 tail", seeds,
                        AttentionProblem.builder().heads(2).length(300).headDim(64).precision(precision).build(),
                        Patterns.parse("bigbird(block=64, window=3, global=2, random=1)")));
            }
            case KEY_SHARDS -> {
                for (String text : PATTERNS) {
                    c.add(normal("pattern " + text + " nq 90 nk 100", seeds,
                            base.toBuilder().queryLength(90).keyLength(100).build(), Patterns.parse(text)));
                }
                c.add(AttentionCase.random("gqa hq=4 hkv=2 dv != d tail", seeds.nextLong(),
                        base.toBuilder().heads(4).kvHeads(2).length(75).headDim(12).valueDim(20).build(), BIGBIRD,
                        TensorLayout.BSHD, AttentionCase.Values.NORMAL));
                c.add(normal("mqa hq=4 hkv=1", seeds, base.toBuilder().heads(4).kvHeads(1).build(), SPARSE_BIGBIRD));
                c.add(normal("causal nq 40 nk 90", seeds, base.toBuilder().queryLength(40).keyLength(90).causal(true).build(),
                        BIGBIRD));
                c.add(AttentionCase.random("causal nq 90 nk 40 (rows with no key)", seeds.nextLong(),
                        base.toBuilder().queryLength(90).keyLength(40).causal(true).build(), BIGBIRD, TensorLayout.BSHD,
                        AttentionCase.Values.NORMAL));
                c.add(normal("causal(P) nq 100 nk 100", seeds, base.toBuilder().length(100).build(),
                        Patterns.parse("causal(bigbird(block=16, window=3, global=1, random=2, seed=3))")));
                c.add(normal("key and query lengths with zero entries", seeds,
                        base.toBuilder().batch(3).keyLengths(96, 37, 0).queryLengths(63, 0, 96).build(), BIGBIRD));
                c.add(normal("causal with key lengths", seeds,
                        base.toBuilder().batch(2).queryLength(70).keyLength(100).keyLengths(100, 45).causal(true).build(),
                        SPARSE_BIGBIRD));
                c.add(normal("block 64 tail", seeds,
                        AttentionProblem.builder().heads(2).length(300).headDim(64).precision(precision).build(),
                        Patterns.parse("bigbird(block=64, window=3, global=2, random=1)")));
            }
            default -> throw new IllegalStateException(feature.name());
        }
        return c;
    }

    /**
     * Every case of every feature, float32.
     *
     * @param seed base seed
     * @return all cases
     */
    public static List<AttentionCase> standard(long seed) {
        List<AttentionCase> all = new ArrayList<>();
        for (CaseKind f : CaseKind.values()) {
            all.addAll(cases(f, seed, Precision.FP32));
        }
        return all;
    }

    private static AttentionCase normal(String name, Random seeds, AttentionProblem problem, PatternSpec pattern) {
        return AttentionCase.random(name, seeds.nextLong(), problem, pattern, TensorLayout.BHSD, AttentionCase.Values.NORMAL);
    }

    /** 96 tokens at block 16: a 6x6 layout whose row 3 is empty and whose other rows are scattered. */
    static ExplicitPattern emptyRowLayout() {
        boolean[][] m = new boolean[6][6];
        for (int r = 0; r < 6; r++) {
            m[r][r] = r != 3;
            m[r][(r * 3 + 1) % 6] = r != 3;
        }
        m[5][0] = true;
        return ExplicitPattern.of(16, m);
    }
}
