package dev.starling.conformance;

import dev.starling.api.Feature;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * The numbered conformance rules; {@code conformance/RULES.md} says for each what it requires,
 * why, and what to check in your code when it fails. Required rules must pass; optional rules
 * run only for backends that declare the capability and skip otherwise, saying which to declare.
 */
public enum Rule {
    /** Output matches the oracle: every pattern, block-multiple lengths, Nq != Nk, Dv != D, scale. */
    R01_OUTPUT_MATCHES_ORACLE(1, "outputMatchesOracle", true),
    /** Partial tail blocks: lengths that are not block multiples, down to one token. */
    R02_PARTIAL_TAIL_BLOCKS(2, "partialTailBlocks", true),
    /** The bottom-right aligned causal mask. */
    R03_CAUSAL(3, "causal", false, Feature.CAUSAL),
    /** Grouped-query and multi-query attention. */
    R04_GROUPED_QUERY(4, "groupedQuery", false, Feature.GROUPED_QUERY),
    /** Per-batch key and query lengths. */
    R05_KEY_AND_QUERY_LENGTHS(5, "keyAndQueryLengths", false, Feature.KEY_LENGTHS, Feature.QUERY_LENGTHS),
    /** The log-sum-exp output. */
    R06_LSE(6, "logSumExp", false, Feature.LSE),
    /** Scores around ±1e4 give the exact softmax (max shift). */
    R07_HUGE_LOGITS(7, "hugeLogits", true),
    /** Rows with no allowed key give O = 0 and LSE = −∞. */
    R08_EMPTY_ROWS(8, "emptyRows", true),
    /** Every output element is written, over a poisoned output. */
    R09_EVERY_ELEMENT_WRITTEN(9, "everyElementWritten", true),
    /** Inputs are never modified. */
    R10_INPUTS_NOT_MODIFIED(10, "inputsNotModified", true),
    /** Repeated calls give bit-identical output. */
    R11_DETERMINISTIC(11, "deterministic", true),
    /**
     * Four threads calling forward on one plan, each with its own inputs, get bit for bit what serial
     * calls on the same inputs get.
     */
    R12_THREAD_SAFE(12, "threadSafeForward", true),
    /** NaN in keys a row may not see never reaches that row. */
    R13_MASKED_NAN_NEVER_LEAKS(13, "maskedNanNeverLeaks", true),
    /** NaN in an allowed key reaches exactly the rows that see it. */
    R14_ALLOWED_NAN_REACHES_ITS_ROWS(14, "allowedNanReachesExactlyItsRows", true),
    /** Bad input is refused with IllegalArgumentException before the output is touched. */
    R15_BAD_INPUT_REFUSED(15, "badInputRefused", true),
    /** forward after close throws IllegalStateException. */
    R16_FORWARD_AFTER_CLOSE(16, "forwardAfterCloseThrows", true),
    /**
     * Features not declared throw UnsupportedOperationException, backward included when
     * {@code backward} is not declared.
     */
    R17_UNDECLARED_FEATURES_THROW(17, "undeclaredFeaturesThrow", true),
    /** BSHD tensors give the same answer as BHSD. */
    R18_TENSOR_LAYOUTS(18, "bothTensorLayouts", true),
    /** BigBird over 65,536 tokens runs in a 1 GB heap: memory is linear. */
    R19_LINEAR_MEMORY(19, "linearMemory", true),
    /** One NaN or infinity in q, k or v gives exactly the oracle's NaN, infinities and numbers, element by element. */
    R20_NON_FINITE_INPUTS(20, "nonFiniteInputsElementByElement", true),
    /** A layout split into disjoint key-block sets, computed separately with LSE and merged, equals the whole. */
    R21_KEY_SPLITS_MERGE(21, "keySplitsMergeToTheWhole", false, Feature.LSE),
    /**
     * Whole problems drawn by a seeded generator that combines every feature the backend declares
     * (batch, GQA/MQA, lengths, head dims, a layout per tensor, causal, key and query lengths, LSE,
     * every pattern, unequal block sizes), every value pair at least once; every element checked.
     */
    R22_FEATURE_COMBINATIONS(22, "featureCombinations", true),
    /** At least 16,384 keys: sampled rows (global, first and last blocks, random interior) match the oracle. */
    R23_LONG_SEQUENCES(23, "longSequences", true),
    /** Time follows the number of allowed blocks, not {@code Nq × Nk}. */
    R24_WORK_FOLLOWS_ALLOWED_BLOCKS(24, "workFollowsAllowedBlocks", true),
    /**
     * The SPI contract: a lowercase, stable {@code name()}, a stable {@code priority()}, non-null
     * {@code availability()} and {@code capabilities()} that never throw, a public no-argument
     * constructor that does no work.
     */
    R25_SERVICE_CONTRACT(25, "serviceContract", true),
    /**
     * A problem's keys cut into contiguous key shards ({@code KeyShards}), each computed with LSE on
     * its own keys and values (its problem: key lengths cut, the causal rule moved), and merged in
     * any order, equals the whole.
     */
    R26_KEY_SHARDS_MERGE(26, "keyShardsMergeToTheWhole", false, Feature.LSE),
    /**
     * Gradients {@code dq}, {@code dk}, {@code dv} match the float64 gradient oracle: every pattern,
     * partial tail blocks, {@code Nq != Nk}, {@code Dv != D}, a custom scale, batch 2, block 64, BSHD.
     */
    R27_GRADIENTS_MATCH_ORACLE(27, "gradientsMatchOracle", false, Feature.BACKWARD),
    /**
     * Gradients under the masks: causal (also {@code Nq != Nk}), key and query lengths, empty rows and
     * keys no row reads, which get exact zeros.
     */
    R28_GRADIENT_MASKS(28, "gradientMasksAndZeros", false, Feature.BACKWARD),
    /** With GQA and MQA, a key/value head's {@code dk} and {@code dv} sum over its query heads. */
    R29_GRADIENT_GROUPED_QUERY(29, "gradientGroupedQuery", false, Feature.GROUPED_QUERY, Feature.BACKWARD),
    /**
     * One NaN or infinity in {@code q}, {@code k}, {@code v} or {@code dOut} gives exactly the gradient
     * oracle's NaN, infinities and numbers, element by element.
     */
    R30_GRADIENT_NON_FINITE(30, "gradientNonFiniteInputs", false, Feature.BACKWARD),
    /** Repeated backward calls, on one plan and on a new one, give bit-identical gradients. */
    R31_GRADIENT_DETERMINISTIC(31, "gradientDeterministic", false, Feature.BACKWARD),
    /**
     * Four threads calling backward on one plan, each with its own inputs, get bit for bit what serial
     * calls on the same inputs get.
     */
    R32_THREAD_SAFE_BACKWARD(32, "threadSafeBackward", false, Feature.BACKWARD),
    /** Every element of {@code dq}, {@code dk} and {@code dv} is written, over a NaN sentinel. */
    R33_GRADIENT_EVERY_ELEMENT_WRITTEN(33, "gradientEveryElementWritten", false, Feature.BACKWARD),
    /** Backward never modifies {@code q}, {@code k}, {@code v}, {@code out}, {@code lse} or {@code dOut}. */
    R34_BACKWARD_INPUTS_NOT_MODIFIED(34, "backwardInputsNotModified", false, Feature.BACKWARD),
    /**
     * A wrong shape of any of the nine arguments, a missing {@code lse} or {@code dOut}, or a gradient
     * sharing an array with an input or another gradient is refused with IllegalArgumentException naming
     * it, before any gradient is written.
     */
    R35_BACKWARD_BAD_INPUT_REFUSED(35, "backwardBadInputRefused", false, Feature.BACKWARD),
    /** backward after close throws IllegalStateException. */
    R36_BACKWARD_AFTER_CLOSE(36, "backwardAfterCloseThrows", false, Feature.BACKWARD),
    /** The combinations of rule 22, each run through backward and checked against the gradient oracle. */
    R37_GRADIENT_FEATURE_COMBINATIONS(37, "gradientFeatureCombinations", false, Feature.BACKWARD),
    /**
     * Strided views: q, k and v of one fused {@code [B, N, 3, H, D]} projection, a GQA-packed
     * projection, keys stored {@code [B, H, D, N]}, a tensor inside a larger array at an offset, and
     * outputs interleaved with other data (which must stay untouched) give the oracle's answer.
     */
    R38_STRIDED_TENSORS(38, "stridedTensors", true),
    /** Direct (off-heap) buffers at an offset, in either byte order, as inputs and output give the oracle's answer. */
    R39_OFF_HEAP_TENSORS(39, "offHeapTensors", true),
    /**
     * bf16 and fp16 inputs and outputs (heap {@code short[]}, direct buffers, a fused projection): the
     * oracle over the widened inputs, within the precision's tolerance plus half a unit in the last
     * place of the output type (the output is rounded to nearest even).
     */
    R40_HALF_PRECISION_TENSORS(40, "halfPrecisionTensors", true),
    /**
     * Block counts: layouts whose entries weigh their keys {@code c} times (block multiplicity), forward,
     * merged from key-block sets and key shards, and backward, against the oracles.
     */
    R41_BLOCK_COUNTS(41, "blockCounts", false, Feature.BLOCK_COUNTS),
    /**
     * Calls interrupted mid-flight, and a plan closed during a call: once the call returned (or threw)
     * and once {@code close()} returned, no thread of the call writes the caller's buffers; a call that
     * completes, and every later call, gives the uninterrupted bits. Backward too when declared.
     */
    R42_INTERRUPTED_CALLS(42, "interruptedCalls", true),
    /**
     * Scores from about {@code 1e9} to {@code 1e30} (finite, exact in float32), ties at the maximum
     * included: the forward matches the oracle, and so do the gradients when {@code backward} is
     * declared, with no allowance that grows with the logits.
     */
    R43_LARGE_FINITE_LOGITS(43, "largeFiniteLogits", true),
    /**
     * Results written into views: the LSE into {@code [B, Hq, Nq, 1]} tensor views (strided, off-heap,
     * packed) and read from one by backward; the gradients into the slots of a fused gradient array
     * or buffer, a transposed view and a direct buffer; each against the oracle, the storage around
     * every view untouched.
     */
    R44_OUTPUT_VIEWS(44, "outputViews", true),
    /**
     * The backward of long rows (BigBird's global rows of 126 and 257 key blocks, which backends split into
     * several work units), over 2,003 and 16,429 keys: every gradient element against the oracle.
     */
    R45_GRADIENT_LONG_ROWS(45, "gradientLongRows", false, Feature.BACKWARD),
    /**
     * The backward with a moved causal rule ({@code causalShift}): explicit shifts, and causal problems (long
     * rows among them) cut into key shards, every gradient element against the oracle of the shard's problem.
     */
    R46_GRADIENT_CAUSAL_SHIFT(46, "gradientCausalShift", false, Feature.BACKWARD, Feature.CAUSAL, Feature.CAUSAL_SHIFT),
    /**
     * Long rows (257 key blocks) whose parts' maxima lie thousands apart (exact scores to about ±8e3): a split
     * row's partial results must be recombined with the right maximum and rescaled.
     */
    R47_SPLIT_ROWS_RECOMBINE(47, "splitRowsRecombine", true),
    /**
     * No key counted twice: layouts whose parts overlap (random blocks inside the window, globals in the window,
     * unions of overlapping patterns, causal diagonals, a union of block lists) give the oracle of the set.
     */
    R48_KEYS_COUNTED_ONCE(48, "keysCountedOnce", true),
    /**
     * No key missed: every key perturbed once ({@code 2^30} in one value feature), the output moves as the oracle
     * says, for keys weighing down to about {@code 1e-13}.
     */
    R49_EVERY_KEY_CONTRIBUTES(49, "everyAllowedKeyContributes", true),
    /**
     * Poisoned bounds: q, k and v as views in storage that is NaN everywhere outside them (margins before and
     * after, gaps between rows and heads); a read out of bounds fails, naming the element read.
     */
    R50_POISONED_BOUNDS(50, "poisonedBounds", true),
    /**
     * The FlashAttention criterion next to the tolerance rows: on each case of rules 1 to 4, the largest error
     * against float64 at most 2× (output) and 3× (each gradient, with {@code backward}) that of the kit's naive
     * implementation in the same precision ({@link NaiveAttention}), in every declared precision.
     */
    R51_NAIVE_ERROR_BOUND(51, "withinTheNaiveErrorBound", true);

    private final int number;
    private final String id;
    private final boolean required;
    private final Set<Feature> needs;

    Rule(int number, String id, boolean required, Feature... needs) {
        this.number = number;
        this.id = id;
        this.required = required;
        this.needs = needs.length == 0 ? Set.of() : Collections.unmodifiableSet(EnumSet.of(needs[0], needs));
    }

    /** @return the gradient rules, 27 to 37, 45 and 46, in number order: they check {@code backward} alone */
    public static Set<Rule> gradientRules() {
        Set<Rule> rules = EnumSet.range(R27_GRADIENTS_MATCH_ORACLE, R37_GRADIENT_FEATURE_COMBINATIONS);
        rules.addAll(EnumSet.of(R45_GRADIENT_LONG_ROWS, R46_GRADIENT_CAUSAL_SHIFT));
        return rules;
    }

    /** @return the rule number, as in RULES.md */
    public int number() {
        return number;
    }

    /** @return the test name, e.g. {@code required_rule01_outputMatchesOracle} */
    public String testName() {
        return (required ? "required" : "optional") + String.format("_rule%02d_", number) + id;
    }

    /** @return whether the rule must pass for every backend */
    public boolean required() {
        return required;
    }

    /**
     * @return the {@link Feature}s a backend must declare for this rule to run (empty for required rules); a
     *         backend lacking one skips the rule, naming them
     */
    public Set<Feature> needs() {
        return needs;
    }

    /**
     * The rule a text names, as {@code --only} and {@code -Dstarling.conformance.only} take it: the
     * number ({@code 22}), {@code rule22} or {@code r22}, the test name
     * ({@code required_rule22_featureCombinations}), the short name ({@code featureCombinations}) or
     * the constant ({@code R22_FEATURE_COMBINATIONS}); case is ignored.
     *
     * @param text the text
     * @return the rule
     * @throws IllegalArgumentException naming the forms accepted when no rule matches
     */
    public static Rule parse(String text) {
        String t = text == null ? "" : text.strip();
        String digits = t.toLowerCase(Locale.ROOT).replaceFirst("^(rule|r)", "");
        // ASCII digits only, and no more than a rule number can have: no NumberFormatException, no Arabic-Indic digits.
        int number = digits.matches("[0-9]{1,9}") ? Integer.parseInt(digits) : -1;
        for (Rule r : values()) {
            if (number == r.number || t.equalsIgnoreCase(r.testName()) || t.equalsIgnoreCase(r.id)
                    || t.equalsIgnoreCase(r.name())) {
                return r;
            }
        }
        throw new IllegalArgumentException("no conformance rule '" + text + "': give a rule number (" + numbers()
                + "), a test name such as " + R22_FEATURE_COMBINATIONS.testName() + ", or a list of them separated by commas");
    }

    /** @return the rule numbers as ranges, e.g. {@code 1-44} */
    private static String numbers() {
        StringBuilder out = new StringBuilder();
        Rule[] all = values();
        for (int i = 0; i < all.length; ) {
            int j = i;
            while (j + 1 < all.length && all[j + 1].number == all[j].number + 1) {
                j++;
            }
            out.append(out.length() == 0 ? "" : ", ").append(all[i].number).append(i == j ? "" : "-" + all[j].number);
            i = j + 1;
        }
        return out.toString();
    }

    /**
     * Rules named in a comma-separated list (see {@link #parse}); empty entries between commas are ignored.
     *
     * @param list e.g. {@code "12,22"}; {@code null} selects every rule
     * @return the rules, in rule order
     * @throws IllegalArgumentException when an entry names no rule, or the list names none ({@code ""}, {@code ",,,"})
     */
    public static Set<Rule> parseList(String list) {
        if (list == null) {
            return EnumSet.allOf(Rule.class);
        }
        Set<Rule> rules = EnumSet.noneOf(Rule.class);
        for (String part : list.split(",")) {
            if (!part.isBlank()) {
                rules.add(parse(part));
            }
        }
        if (rules.isEmpty()) {
            throw new IllegalArgumentException("no rule numbers given in '" + list + "': give rule numbers or test names "
                    + "separated by commas, e.g. 22 or 12,22");
        }
        return rules;
    }
}
