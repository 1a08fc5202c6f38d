package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.conformance.FlawedBackend.Flaw;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The kit tests itself: a correct backend passes every rule; each broken one is caught by the rule
 * meant for it, for the right reason (the failure says what the flaw does wrong), and the flaws of
 * the combination, long-sequence, concurrency, work and SPI rules, and every broken backward pass, fail
 * exactly the rules listed.
 */
class KitSelfTest {

    private static RuleResult check(Flaw flaw, Rule rule) {
        return check(() -> new FlawedBackend(flaw), rule);
    }

    private static RuleResult check(Supplier<SparseAttention> backend, Rule rule) {
        return new ConformanceRules(backend, ConformanceRules.DEFAULT_SEED).check(rule);
    }

    @Test
    void aCorrectBackendPassesEveryRule() {
        List<String> problems = new ArrayList<>();
        for (Rule rule : Rule.values()) {
            if (rule == Rule.R19_LINEAR_MEMORY) {
                continue; // The plain flawed backend is too slow for 65,536 tokens; rule 19 is exercised by the reference backend.
            }
            RuleResult r = check(Flaw.NONE, rule);
            if (r.status() != RuleResult.Status.PASS) {
                problems.add(rule.testName() + ": " + r.status() + " " + r.detail());
            }
        }
        assertTrue(problems.isEmpty(), problems.stream().collect(Collectors.joining("\n")));
    }

    /**
     * Each flaw fails its rule, and the failure shows the flaw: the regular expression is matched
     * against the failure's detail, so a flaw caught by an accident (an exception elsewhere, another
     * case) does not count.
     */
    @ParameterizedTest(name = "{0} is caught by {1}")
    @CsvSource(delimiter = '#', quoteCharacter = '"', value = {
        "WINDOW_OFF_BY_ONE # R01_OUTPUT_MATCHES_ORACLE # .*output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*",
        "DUPLICATE_BLOCK # R01_OUTPUT_MATCHES_ORACLE # .*output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*",
        "SCALE_MISSING # R01_OUTPUT_MATCHES_ORACLE # .*output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*",
        "TAIL_PAST_END # R02_PARTIAL_TAIL_BLOCKS # case .*threw .*IndexOutOfBounds.*",
        "CAUSAL_TOP_LEFT # R03_CAUSAL # case causal nq [<>] nk.*output at .*",
        "GQA_WRONG_HEAD # R04_GROUPED_QUERY # case (gqa|mqa) .*output at .*",
        "KEY_LENGTHS_IGNORED # R05_KEY_AND_QUERY_LENGTHS # case .*key.*output at .*",
        "LSE_LOG2 # R06_LSE # .*lse at \\(b=\\d+, h=\\d+, i=\\d+\\).*",
        "NO_MAX_SHIFT # R07_HUGE_LOGITS # case huge .*output at .*",
        "NO_MAX_SHIFT # R43_LARGE_FINITE_LOGITS # case large .*output at .*",
        "BACKWARD_P_FROM_FLOAT32_LSE # R43_LARGE_FINITE_LOGITS # case large .*tied keys.*: (dq|dk|dv) at \\(b=\\d+, h=\\d+, [ij]=\\d+, d=\\d+\\): .* vs expected .*",
        "KEEPS_WRITING_AFTER_INTERRUPT # R42_INTERRUPTED_CALLS # .*forward interrupted .*: output 0 element \\d+ was written .* after the call returned.*",
        "EMPTY_ROW_NAN # R08_EMPTY_ROWS # .*has no allowed key, so O must be \\+0\\.0, but d=\\d+ is NaN",
        "EMPTY_ROWS_UNWRITTEN # R09_EVERY_ELEMENT_WRITTEN # .*was never written.*",
        "WRITES_INPUT # R10_INPUTS_NOT_MODIFIED # .*input q was modified at \\(b=0, h=0, n=0, d=0\\).*",
        "NONDETERMINISTIC # R11_DETERMINISTIC # .*a second call on the same plan differs bit for bit from the first call, "
                + "output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* where .* \\(\\d+ of \\d+ elements differ\\)",
        "SHARED_SCRATCH # R12_THREAD_SAFE # .*: \\d+ of 24 concurrent forward calls differed bit for bit .*at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\).*",
        "OUTPUT_STAGED_IN_PLAN # R12_THREAD_SAFE # .*: \\d+ of 24 concurrent forward calls differed bit for bit .*at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\).*",
        "MASKED_NAN_LEAKS # R13_MASKED_NAN_NEVER_LEAKS # .*with NaN in (the key padding|the last 5 keys).*NaN.*",
        "ALLOWED_NAN_HIDDEN # R14_ALLOWED_NAN_REACHES_ITS_ROWS # .*with NaN in k\\[.*vs expected NaN.*",
        "WRITES_BEFORE_CHECK # R15_BAD_INPUT_REFUSED # forward with .* wrote into the output before refusing",
        "CLOSE_IGNORED # R16_FORWARD_AFTER_CLOSE # forward after close must throw IllegalStateException but returned normally",
        "UNDECLARED_CAUSAL_IGNORED # R17_UNDECLARED_FEATURES_THROW # the backend does not declare CAUSAL.* but it ran.*",
        "BSHD_AS_BHSD # R18_TENSOR_LAYOUTS # case bshd.*output at .*",
        "STRIDES_IGNORED # R38_STRIDED_TENSORS # case .*: the backend wrote element \\d+ of out slot 0 of the fused output, outside the output view",
        "BUFFER_FROM_ZERO # R39_OFF_HEAP_TENSORS # case .*: the backend wrote float [0-4] of the output buffer, outside the view .*",
        "BF16_TRUNCATED # R40_HALF_PRECISION_TENSORS # case .*bf16 tensors: .*half a bf16 ulp.*",
        "VALUE_NAN_POISONS_ROW # R20_NON_FINITE_INPUTS # .*with NaN in v at .*: output at .*: NaN vs expected .*",
        "NEG_INF_SCORE_POISONS_ROW # R20_NON_FINITE_INPUTS # .*with -?Infinity in [qk] at .*",
        "INF_VALUE_BECOMES_NAN # R20_NON_FINITE_INPUTS # .*with -?Infinity in v at .*: NaN vs expected -?Infinity .*",
        "LSE_LOG2 # R21_KEY_SPLITS_MERGE # .*disjoint key-block sets.*merged in order: output at .*",
        "LSE_MISSES_MAX # R21_KEY_SPLITS_MERGE # .*disjoint key-block sets.*merged in order: output at .*",
        "GQA_BATCH_KV_OFFSET # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(batch=[23] heads=(gqa|mqa) .*output at \\(b=[12], .*",
        "LSE_BATCH_STRIDE_GQA # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(batch=[23] heads=(gqa|mqa) .*lse at \\(b=.*",
        "LSE_ORDER_BSHD # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(.*q_layout=bshd .*lse=on .*lse at \\(b=.*",
        "CAUSAL_PER_ENTRY_LENGTHS # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(.*causal=(problem|pattern) .*_lengths=set.*at \\(b=.*",
        "UNROLLED_NO_REMAINDER # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(.*head_dim=(odd|prime|even|above64|top) .*at \\(b=.*",
        "FIXED_64_TILE # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(.*(head_dim=(above64|top)|value_dim=other).*at \\(b=.*",
        "ONE_LAYOUT_FOR_ALL # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ .*, q B(HS|SH)D, k B(HS|SH)D, v B(HS|SH)D, out B(HS|SH)D\\].*at \\(b=.*",
        "EQUAL_BLOCKS_ASSUMED # R22_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(.*pattern=csr-unequal-blocks .*",
        "LONG_FAST_PATH # R23_LONG_SEQUENCES # case long .*sampled rows .*: output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\).*",
        "QUADRATIC_TIME # R24_WORK_FOLLOWS_ALLOWED_BLOCKS # time does not follow the allowed blocks: at N=\\d+, .*time ratio .*",
        "NON_LOWERCASE_NAME # R25_SERVICE_CONTRACT # .*name\\(\\) is 'Flawed-NonLowercase', not lowercase.*",
        "UNSTABLE_PRIORITY # R25_SERVICE_CONTRACT # .*priority\\(\\) is not stable.*",
        "CAUSAL_SHIFT_IGNORED # R26_KEY_SHARDS_MERGE # case causal.* cut into \\d+ key shards starting at key blocks .*merged in shard order: output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\).*",
        "UNDECLARED_BACKWARD_RUNS # R17_UNDECLARED_FEATURES_THROW # the backend does not declare BACKWARD, so backward must throw UnsupportedOperationException but it ran.*",
        "BACKWARD_MISSING_DELTA # R27_GRADIENTS_MATCH_ORACLE # case pattern .*\\[case seed -?\\d+, .*\\]: dq at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*allowed .*·rms .*",
        "BACKWARD_SCALE_TWICE # R27_GRADIENTS_MATCH_ORACLE # case pattern .*: (dq|dk) at \\(b=\\d+, h=\\d+, [ij]=\\d+, d=\\d+\\): .* vs expected .*",
        "BACKWARD_MASK_IGNORED # R28_GRADIENT_MASKS # case causal.*: (dq|dk|dv) at \\(b=\\d+, h=\\d+, [ij]=\\d+, d=\\d+\\): .* vs expected .*",
        "BACKWARD_GQA_FIRST_HEAD_ONLY # R29_GRADIENT_GROUPED_QUERY # case (gqa|mqa) .*: (dk|dv) at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\): .* vs expected .*",
        "BACKWARD_MASKED_NAN_LEAKS # R30_GRADIENT_NON_FINITE # case .* with (NaN|-?Infinity) in (q|dOut) at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\) .*: (dk|dv) at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\): NaN vs expected .*\\(NaN where the oracle has a finite value\\).*",
        "BACKWARD_NONDETERMINISTIC # R31_GRADIENT_DETERMINISTIC # case .*: a second call on the same plan differs bit for bit from the first backward call, (dk|dv) at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\): .* where .* \\(\\d+ of \\d+ elements differ\\)",
        "BACKWARD_SHARED_SCRATCH # R32_THREAD_SAFE_BACKWARD # .*: \\d+ of 12 concurrent backward calls differed bit for bit .*(dk|dv) at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\).*",
        "BACKWARD_UNREAD_KEYS_UNWRITTEN # R33_GRADIENT_EVERY_ELEMENT_WRITTEN # case .*: dk at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\) was never written \\(still holds the NaN sentinel 0x7fc5a5a5\\)",
        "BACKWARD_WRITES_DOUT # R34_BACKWARD_INPUTS_NOT_MODIFIED # case .*query lengths.*: backward modified its input dOut at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): 0.0 where it held .*",
        "BACKWARD_WRITES_BEFORE_CHECK # R35_BACKWARD_BAD_INPUT_REFUSED # backward with .* wrote into a gradient before refusing.*",
        "BACKWARD_IGNORES_CLOSE # R36_BACKWARD_AFTER_CLOSE # backward after close must throw IllegalStateException but returned normally",
        "CLOSE_IGNORED # R36_BACKWARD_AFTER_CLOSE # backward after close must throw IllegalStateException but returned normally",
        "BACKWARD_GQA_BATCH_KV_OFFSET # R37_GRADIENT_FEATURE_COMBINATIONS # case combination \\d+ of \\d+ \\(batch=[23] heads=(gqa|mqa) .*(dk|dv) at \\(b=[12], h=\\d+, j=\\d+, d=\\d+\\).*",
        "BLOCK_COUNTS_IGNORED # R41_BLOCK_COUNTS # case .*with block counts.*: (output|lse) at \\(b=\\d+, h=\\d+, i=\\d+.*",
        "BACKWARD_BLOCK_COUNTS_IGNORED # R41_BLOCK_COUNTS # case .*with block counts.*, backward: (dq|dk|dv) at \\(b=\\d+, h=\\d+, [ij]=\\d+, d=\\d+\\): .* vs expected .*",
        "GRADIENTS_PACKED_IN_VIEW # R44_OUTPUT_VIEWS # case views .*\\(backward; .*fused \\[B, N, 4, H, D\\] array\\): the backend wrote element \\d+ of slot 3 of the fused gradient array.*",
        "LSE_VIEW_PACKED # R44_OUTPUT_VIEWS # case views .*lse in \\[B, Nq, Hq\\] order.*: lse at \\(b=\\d+, h=\\d+, i=\\d+.*",
        "BACKWARD_LONG_ROWS_DROP_LAST # R45_GRADIENT_LONG_ROWS # case long rows .*: (dq|dk|dv) at \\(b=\\d+, h=\\d+, [ij]=\\d+, d=\\d+\\): .* vs expected .*",
        "BACKWARD_CAUSAL_SHIFT_IGNORED # R46_GRADIENT_CAUSAL_SHIFT # case .*causal shift -?\\d+.*: (dq|dk|dv) at \\(b=\\d+, h=\\d+, [ij]=\\d+, d=\\d+\\): .*",
        "GLOBAL_IN_WINDOW_TWICE # R48_KEYS_COUNTED_ONCE # case overlapping parts .*\\(the oracle counts each allowed key once\\): (output|lse) at \\(b=\\d+, h=\\d+, i=\\d+.*",
        "NEGLIGIBLE_BLOCKS_SKIPPED # R49_EVERY_KEY_CONTRIBUTES # case .* with v\\[:, :, j, j mod \\d+\\] = 2\\^30 for keys j = \\d+ to \\d+ .*: (output|lse) at \\(b=\\d+, h=\\d+, i=\\d+.*",
        "READS_PAST_TAIL # R50_POISONED_BOUNDS # case .*every element outside the views is NaN: output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): NaN vs expected .*; the backend read v's storage element \\d+, outside the view: \\d+ floats after (its last element|element \\(b=\\d+, h=\\d+, n=\\d+, d=\\d+\\), in the gap between rows or heads) .*",
        "APPROXIMATE_EXP # R51_NAIVE_ERROR_BOUND # case .*, output: largest error against float64 .* \\(at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\)\\) is .* times the naive fp32 implementation's .*; at most 2 times it plus the rounding allowance .* \\(the FlashAttention criterion\\)",
        "SPLIT_MERGE_WRONG_MAX # R47_SPLIT_ROWS_RECOMBINE # case split rows .*scores to .*: (output|lse) at \\(b=\\d+, h=\\d+, i=\\d+.*",
    })
    void eachBrokenBackendIsCaughtByItsRule(Flaw flaw, Rule rule, String why) {
        RuleResult r = check(flaw, rule);
        assertEquals(RuleResult.Status.FAIL, r.status(), flaw + " passed " + rule + ": " + r.detail());
        assertTrue(r.detail().matches("(?s)" + why), flaw + " failed " + rule + " for another reason: " + r.detail());
        assertEquals(ConformanceRules.DEFAULT_SEED, r.seed(), "a failure carries the run seed");
    }

    /** Every rule has at least one broken backend that it catches (rule 19 and a constructor flaw below). */
    @Test
    void everyRuleHasABrokenBackend() throws NoSuchMethodException {
        CsvSource cases = KitSelfTest.class.getDeclaredMethod("eachBrokenBackendIsCaughtByItsRule", Flaw.class, Rule.class,
                String.class).getAnnotation(CsvSource.class);
        Set<Rule> covered = EnumSet.of(Rule.R19_LINEAR_MEMORY); // rule19CatchesQuadraticMemoryOnTheConfiguredInstance
        Set<Flaw> flaws = EnumSet.of(Flaw.NONE, Flaw.QUADRATIC_MEMORY, Flaw.FLOAT32_BACKWARD);
        for (String row : cases.value()) {
            String[] cells = row.split("#");
            flaws.add(Flaw.valueOf(cells[0].strip()));
            covered.add(Rule.valueOf(cells[1].strip()));
        }
        assertEquals(EnumSet.allOf(Rule.class), covered, "rules without a broken backend");
        assertEquals(EnumSet.allOf(Flaw.class), flaws, "flaws no test checks");
    }

    /**
     * The flaws of the combination classes, long sequences, concurrency, work and the SPI fail exactly
     * the rules listed among rules 1 to 26, no fewer and no more (rule 19, a child JVM, and rule 24, a timing,
     * aside: none of these flaws changes the work, and a timing should not make this test flaky; the gradient
     * rules 27 to 37 give backward the oracle's forward output, so no forward flaw reaches them, and the sweep
     * below covers them). Most are caught by their
     * rule alone: rules 1 to 21 never combine batch &gt; 1 with GQA, a head dim that is not a multiple
     * of 4 or above 64, tensors of different layouts, unequal block sizes, or causal with lengths.
     * Where another rule sees a flaw too, it is for the same reason: rules 20, 21, 23 and 26 compare LSE
     * of BSHD cases; rule 23's second case and one of rule 26's are causal with key lengths; rule 26
     * gives BSHD queries with the BHSD key and value slices {@code KeyShards.slice} makes (mixed layouts). {@link Flaw#QUADRATIC_TIME} is left
     * out: it makes every other rule slow (rule 23 alone becomes quadratic in 16,429 keys), and its
     * failure of rule 24 says why it fails.
     */
    @ParameterizedTest(name = "{0} fails exactly forward rules {1}")
    @CsvSource({
        "GQA_BATCH_KV_OFFSET, 22",
        "LSE_BATCH_STRIDE_GQA, 22",
        "LSE_ORDER_BSHD, 20 21 22 23 26",
        "CAUSAL_PER_ENTRY_LENGTHS, 22 23 26",
        "UNROLLED_NO_REMAINDER, 22",
        "FIXED_64_TILE, 22",
        "ONE_LAYOUT_FOR_ALL, 22 26",
        "EQUAL_BLOCKS_ASSUMED, 22",
        "LONG_FAST_PATH, 23",
        "OUTPUT_STAGED_IN_PLAN, 12",
        "NON_LOWERCASE_NAME, 25",
        "VALUE_NAN_POISONS_ROW, 20",
        "NEG_INF_SCORE_POISONS_ROW, 20",
        "INF_VALUE_BECOMES_NAN, 20",
        "LSE_LOG2, 6 8 20 21 22 23 26",
        "LSE_MISSES_MAX, 6 8 20 21 22 23 26",
        "CAUSAL_SHIFT_IGNORED, 26",
    })
    void eachFlawFailsExactlyItsRules(Flaw flaw, String rules) {
        Set<Integer> expected = Arrays.stream(rules.split(" ")).map(Integer::valueOf).collect(Collectors.toCollection(TreeSet::new));
        Set<Integer> failed = new TreeSet<>();
        for (Rule rule : Rule.values()) {
            if (rule.number() < Rule.R27_GRADIENTS_MATCH_ORACLE.number() && rule != Rule.R19_LINEAR_MEMORY && rule != Rule.R24_WORK_FOLLOWS_ALLOWED_BLOCKS
                    && check(flaw, rule).status() == RuleResult.Status.FAIL) {
                failed.add(rule.number());
            }
        }
        assertEquals(expected, failed, flaw + " should fail exactly rules " + expected);
    }

    /**
     * Each broken tensor reader fails exactly its own rule among the tensor rules 38 to 40 and passes
     * rules 1 and 18 (packed tensors, which every flawed reader still reads right).
     */
    @ParameterizedTest(name = "{0} fails exactly tensor rule {1}")
    @CsvSource({"STRIDES_IGNORED, 38", "BUFFER_FROM_ZERO, 39", "BF16_TRUNCATED, 40"})
    void eachTensorFlawFailsExactlyItsTensorRule(Flaw flaw, int expected) {
        Set<Integer> failed = new TreeSet<>();
        for (Rule rule : EnumSet.of(Rule.R01_OUTPUT_MATCHES_ORACLE, Rule.R18_TENSOR_LAYOUTS, Rule.R38_STRIDED_TENSORS,
                Rule.R39_OFF_HEAP_TENSORS, Rule.R40_HALF_PRECISION_TENSORS)) {
            if (check(flaw, rule).status() == RuleResult.Status.FAIL) {
                failed.add(rule.number());
            }
        }
        assertEquals(Set.of(expected), failed, flaw + " should fail exactly rule " + expected);
    }

    /**
     * A backend that declares block counts but ignores them (forward and backward, or backward only) fails
     * rule 41 and no other rule (rules 19 and 24 aside, as above): no other rule gives it a layout with counts.
     */
    @ParameterizedTest(name = "{0} fails exactly rule 41")
    @CsvSource({"BLOCK_COUNTS_IGNORED", "BACKWARD_BLOCK_COUNTS_IGNORED"})
    void eachBlockCountFlawFailsExactlyRule41(Flaw flaw) {
        Set<Integer> failed = new TreeSet<>();
        for (Rule rule : Rule.values()) {
            if (rule != Rule.R19_LINEAR_MEMORY && rule != Rule.R24_WORK_FOLLOWS_ALLOWED_BLOCKS
                    && check(flaw, rule).status() == RuleResult.Status.FAIL) {
                failed.add(rule.number());
            }
        }
        assertEquals(Set.of(41), failed, flaw + " should fail exactly rule 41");
    }

    /** The rules that call {@code backward}: rule 17 (an undeclared backward) and the gradient rules 27 to 37. */
    private static final Set<Rule> BACKWARD_RULES = EnumSet.of(Rule.R17_UNDECLARED_FEATURES_THROW,
            Rule.R27_GRADIENTS_MATCH_ORACLE, Rule.R28_GRADIENT_MASKS, Rule.R29_GRADIENT_GROUPED_QUERY,
            Rule.R30_GRADIENT_NON_FINITE, Rule.R31_GRADIENT_DETERMINISTIC, Rule.R32_THREAD_SAFE_BACKWARD,
            Rule.R33_GRADIENT_EVERY_ELEMENT_WRITTEN, Rule.R34_BACKWARD_INPUTS_NOT_MODIFIED,
            Rule.R35_BACKWARD_BAD_INPUT_REFUSED, Rule.R36_BACKWARD_AFTER_CLOSE, Rule.R37_GRADIENT_FEATURE_COMBINATIONS);

    /**
     * Each broken backward fails exactly the rules listed among those that call {@code backward} (rule 17 and
     * rules 27 to 37). The sweep over the forward rules, above, leaves the gradient rules out, and this one leaves
     * the other forward rules out: the gradient rules give backward the oracle's forward output and LSE, so a forward flaw
     * never reaches them, and each backward flaw changes only {@code backward} (its forward is the correct one).
     * Where several rules see a flaw, it is for the same reason: rule 30 and 37 compare finite gradients of GQA,
     * causal and length cases too; rule 32 compares a thread's calls with serial calls, which a call-order
     * dependence breaks as well.
     */
    @ParameterizedTest(name = "{0} fails exactly backward rules {1}")
    @CsvSource({
        "UNDECLARED_BACKWARD_RUNS, 17",
        "BACKWARD_MISSING_DELTA, 27 28 29 30 37",
        "BACKWARD_SCALE_TWICE, 27 28 29 30 37",
        "BACKWARD_MASK_IGNORED, 28 30 37",
        "BACKWARD_GQA_FIRST_HEAD_ONLY, 29 30 37",
        "BACKWARD_MASKED_NAN_LEAKS, 30",
        "BACKWARD_NONDETERMINISTIC, 31 32",
        "BACKWARD_SHARED_SCRATCH, 32",
        "BACKWARD_UNREAD_KEYS_UNWRITTEN, 33 37",
        "BACKWARD_WRITES_DOUT, 34",
        "BACKWARD_WRITES_BEFORE_CHECK, 35",
        "BACKWARD_IGNORES_CLOSE, 36",
        "BACKWARD_GQA_BATCH_KV_OFFSET, 37",
    })
    void eachBackwardFlawFailsExactlyItsRules(Flaw flaw, String rules) {
        Set<Integer> expected = Arrays.stream(rules.split(" ")).map(Integer::valueOf).collect(Collectors.toCollection(TreeSet::new));
        Set<Integer> failed = new TreeSet<>();
        for (Rule rule : BACKWARD_RULES) {
            if (check(flaw, rule).status() == RuleResult.Status.FAIL) {
                failed.add(rule.number());
            }
        }
        assertEquals(expected, failed, flaw + " should fail exactly rules " + expected);
    }

    /**
     * A backward in plain float32 arithmetic (sequential sums, no compensation) passes every gradient rule with the
     * fp32 gradient tolerance: the tolerance is not tighter than float32 itself. Prints how close each rule comes
     * (worst element as a fraction of the tolerance), a first measurement for setting the gradient rows.
     */
    @Test
    void aFloat32BackwardPassesTheGradientRules() {
        List<String> problems = new ArrayList<>();
        for (Rule rule : BACKWARD_RULES) {
            RuleResult r = check(Flaw.FLOAT32_BACKWARD, rule);
            System.out.printf("float32 backward, %s: %s, worst element at %.3f of the fp32 gradient tolerance%n",
                    rule.testName(), r.status(), r.worstRatio());
            if (r.status() != RuleResult.Status.PASS) {
                problems.add(rule.testName() + ": " + r.detail());
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /** A backend that does not declare backward skips the gradient rules, naming the capability, and passes rule 17. */
    @Test
    void aBackendWithoutBackwardSkipsTheGradientRulesAndRefusesBackward() {
        Capabilities noBackward = Capabilities.full("cpu", EnumSet.of(Precision.FP32));
        ConformanceRules rules = new ConformanceRules(() -> new FlawedBackend(Flaw.NONE, noBackward),
                ConformanceRules.DEFAULT_SEED);
        for (Rule rule : BACKWARD_RULES) {
            RuleResult r = rules.check(rule);
            if (rule == Rule.R17_UNDECLARED_FEATURES_THROW) {
                assertEquals(RuleResult.Status.PASS, r.status(), r.detail());
            } else {
                assertEquals(RuleResult.Status.SKIPPED, r.status(), rule + ": " + r.detail());
                assertTrue(r.detail().contains("does not declare BACKWARD"), r.detail());
            }
        }
        Capabilities noGqa = Capabilities.builder("cpu").precisions(EnumSet.of(Precision.FP32))
                .features(Feature.CAUSAL, Feature.LSE, Feature.KEY_LENGTHS, Feature.QUERY_LENGTHS, Feature.BACKWARD).headDims(1, 256).build();
        assertEquals("GROUPED_QUERY", ConformanceRules.missingCapability(Rule.R29_GRADIENT_GROUPED_QUERY, noGqa));
        assertEquals("GROUPED_QUERY and BACKWARD", ConformanceRules.missingCapability(Rule.R29_GRADIENT_GROUPED_QUERY,
                noGqa.toBuilder().without(Feature.BACKWARD).build()));
        // Declaring backward without GQA, causal or lengths: the gradient rules run what is declared.
        Capabilities bare = Capabilities.builder("cpu").precisions(EnumSet.of(Precision.FP32))
                .features(Feature.BACKWARD).headDims(1, 256).build();
        ConformanceRules bareRules = new ConformanceRules(() -> new FlawedBackend(Flaw.NONE, bare), ConformanceRules.DEFAULT_SEED);
        for (Rule rule : List.of(Rule.R27_GRADIENTS_MATCH_ORACLE, Rule.R28_GRADIENT_MASKS, Rule.R30_GRADIENT_NON_FINITE,
                Rule.R32_THREAD_SAFE_BACKWARD, Rule.R35_BACKWARD_BAD_INPUT_REFUSED, Rule.R37_GRADIENT_FEATURE_COMBINATIONS)) {
            RuleResult r = bareRules.check(rule);
            assertEquals(RuleResult.Status.PASS, r.status(), rule + ": " + r.detail());
        }
        assertEquals(RuleResult.Status.SKIPPED, bareRules.check(Rule.R29_GRADIENT_GROUPED_QUERY).status());
    }

    /** The printed run seed and rule of a gradient failure, given back, reproduce it exactly. */
    @Test
    void theReplayOfAGradientFailureReproducesIt() {
        assertReplayReproduces(Flaw.BACKWARD_GQA_BATCH_KV_OFFSET, Rule.R37_GRADIENT_FEATURE_COMBINATIONS, 78);
    }

    /**
     * Rule 19's child JVM builds the configured instance, by a supplier class or by the contract class
     * itself; before it starts, the kit says on standard error what runs (a long silence looks hung).
     */
    @Test
    void rule19CatchesQuadraticMemoryOnTheConfiguredInstance() {
        Supplier<SparseAttention> flawed = () -> new FlawedBackend(Flaw.QUADRATIC_MEMORY);
        for (LinearMemoryProbe.BackendSource source : List.of(
                LinearMemoryProbe.BackendSource.supplierClass(FlawedBackend.QuadraticMemory.class),
                LinearMemoryProbe.BackendSource.contractClass(QuadraticMemoryContract.class))) {
            PrintStream err = System.err;
            ByteArrayOutputStream printed = new ByteArrayOutputStream();
            RuleResult r;
            try {
                System.setErr(new PrintStream(printed, true, StandardCharsets.UTF_8));
                r = new ConformanceRules(flawed, ConformanceRules.DEFAULT_SEED).memoryRuleBackend(source)
                        .check(Rule.R19_LINEAR_MEMORY);
            } finally {
                System.setErr(err);
            }
            assertEquals(RuleResult.Status.FAIL, r.status(), source + ": " + r.detail());
            assertTrue(r.detail().contains("built there as " + source) && r.detail().contains("failed (exit"), r.detail());
            String notice = printed.toString(StandardCharsets.UTF_8);
            assertTrue(notice.startsWith("starling conformance: rule 19, backend '")
                    && notice.contains("65,536 tokens in a child JVM with -Xmx1g (backend built there as " + source + ")"),
                    "rule 19's notice: " + notice);
        }
        LinearMemoryProbe.BackendSource fromContract = new QuadraticMemoryContract().memoryRuleSource();
        assertEquals(LinearMemoryProbe.BackendSource.Kind.CONTRACT, fromContract.kind());
        assertEquals(QuadraticMemoryContract.class.getName(), fromContract.className());
    }

    /**
     * A contract whose backend is configured, not made by a no-argument constructor: a fixture rule
     * 19's child JVM creates, never run as a test itself (Surefire leaves nested classes out by default;
     * {@code @Disabled} covers runs that select them).
     */
    @Disabled("a fixture for rule 19's child JVM, not a test")
    static final class QuadraticMemoryContract extends SparseAttentionContract {
        @Override
        protected SparseAttention createBackend() {
            return new FlawedBackend(Flaw.QUADRATIC_MEMORY);
        }
    }

    @Test
    void rule25CatchesAConstructorThatStartsThreads() {
        RuleResult r = check(FlawedBackend.ThreadInConstructor::new, Rule.R25_SERVICE_CONTRACT);
        assertEquals(RuleResult.Status.FAIL, r.status(), r.detail());
        assertTrue(r.detail().contains("the no-argument constructor starts threads [flawed-constructor-worker]"), r.detail());
    }

    @Test
    void rule25CatchesAClassServiceLoaderCannotCreate() {
        RuleResult r = check(() -> new SparseAttention() {
            @Override
            public String name() {
                return "anonymous";
            }

            @Override
            public int priority() {
                return 0;
            }

            @Override
            public Availability availability() {
                return null;
            }

            @Override
            public Capabilities capabilities() {
                return Capabilities.full("cpu", EnumSet.of(Precision.FP32));
            }

            @Override
            public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
                throw new UnsupportedOperationException("never planned");
            }
        }, Rule.R25_SERVICE_CONTRACT);
        assertEquals(RuleResult.Status.FAIL, r.status());
        assertTrue(r.detail().contains("availability() returned null")
                && r.detail().contains("not a public class with a public no-argument constructor"), r.detail());
    }

    @Test
    void lseFlawsCorruptTheMergedOutput() {
        for (Flaw flaw : new Flaw[] {Flaw.LSE_LOG2, Flaw.LSE_MISSES_MAX}) {
            RuleResult r = check(flaw, Rule.R21_KEY_SPLITS_MERGE);
            assertTrue(r.detail().matches("(?s).*disjoint key-block sets.*merged in order: output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\).*"),
                    r.detail());
        }
    }

    @Test
    void nonFiniteFailuresNameTheInjectionAndTheFirstMismatch() {
        RuleResult r = check(Flaw.INF_VALUE_BECOMES_NAN, Rule.R20_NON_FINITE_INPUTS);
        assertTrue(r.detail().matches("(?s)case .*\\[case seed -?\\d+, .* with (Infinity|-Infinity) in v at \\(b=\\d+, h=\\d+, j=\\d+, d=\\d+\\) "
                + "\\(.*\\): output at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): NaN vs expected (Infinity|-Infinity) .*"), r.detail());
        assertEquals(ConformanceRules.DEFAULT_SEED, r.seed());
    }

    @Test
    void failuresNameTheWorstElementAndTheRunSeed() {
        RuleResult r = check(Flaw.SCALE_MISSING, Rule.R01_OUTPUT_MATCHES_ORACLE);
        assertTrue(r.detail().matches("(?s).*at \\(b=\\d+, h=\\d+, i=\\d+, d=\\d+\\): .* vs expected .*"), r.detail());
        assertEquals(ConformanceRules.DEFAULT_SEED, r.seed());
        assertTrue(r.worstRatio() > 1);
        assertEquals("starling conformance --backend mine --seed " + ConformanceRules.DEFAULT_SEED + " --only 1",
                r.replayCommand("mine"));
        assertEquals("-Dstarling.conformance.seed=" + ConformanceRules.DEFAULT_SEED + " -Dstarling.conformance.only=1",
                r.replayProperties());
    }

    /** Issue 18, item 5: the printed run seed and rule, given back, reproduce the failure exactly. */
    @Test
    void theReplayOfAFailureReproducesIt() {
        assertReplayReproduces(Flaw.UNROLLED_NO_REMAINDER, Rule.R22_FEATURE_COMBINATIONS, 77);
    }

    /** Fails {@code rule} with {@code flaw}, then runs what its replay command says: the same result. */
    private static void assertReplayReproduces(Flaw flaw, Rule rule, long runSeed) {
        Supplier<SparseAttention> flawed = () -> new FlawedBackend(flaw);
        RuleResult first = new ConformanceRules(flawed, runSeed).check(rule);
        assertEquals(RuleResult.Status.FAIL, first.status());
        assertEquals(runSeed, first.seed());
        // What the replay command says: --seed <run seed> --only <rule>.
        String[] replay = first.replayCommand("flawed").split(" ");
        long seed = Long.parseLong(replay[Arrays.asList(replay).indexOf("--seed") + 1]);
        Set<Rule> only = Rule.parseList(replay[Arrays.asList(replay).indexOf("--only") + 1]);
        List<RuleResult> again = ConformanceRunner.run(flawed, ConformanceRunner.Options.defaults().withSeed(seed).withOnly(only));
        assertEquals(1, again.size());
        assertEquals(first, again.get(0));
    }

    @Test
    void theRunSeedChoosesTheCombinations() {
        Capabilities caps = Capabilities.full("cpu", EnumSet.of(Precision.FP32));
        String a = CombinationGenerator.generate(caps, 1).get(0).testCase().toString();
        String b = CombinationGenerator.generate(caps, 2).get(0).testCase().toString();
        assertTrue(!a.equals(b), a);
        assertEquals(a, CombinationGenerator.generate(caps, 1).get(0).testCase().toString());
    }

    /** Issue 18, item 4: a backend that cannot run is skipped, or, when availability is required, fails. */
    @Test
    void anUnavailableBackendFailsWhenAvailabilityIsRequired() {
        Supplier<SparseAttention> unavailable = FlawedBackend.Unavailable::new;
        Supplier<SparseAttention> throwing = () -> new FlawedBackend() {
            @Override
            public Availability availability() {
                throw new IllegalStateException("native probe crashed");
            }
        };
        for (Supplier<SparseAttention> backend : List.of(unavailable, throwing)) {
            ConformanceRules rules = new ConformanceRules(backend, 5);
            RuleResult skipped = rules.check(Rule.R01_OUTPUT_MATCHES_ORACLE);
            assertEquals(RuleResult.Status.SKIPPED, skipped.status(), skipped.detail());
            RuleResult failed = rules.requireAvailable(true).check(Rule.R01_OUTPUT_MATCHES_ORACLE);
            assertEquals(RuleResult.Status.FAIL, failed.status());
            assertTrue(failed.detail().matches("backend 'flawed-none' is unavailable: .*(no such device here|native probe "
                    + "crashed).*a backend that cannot run cannot pass.*"), failed.detail());
            List<RuleResult> all = ConformanceRunner.run(backend, ConformanceRunner.Options.defaults().withQuick(true)
                    .withRequireAvailable(true));
            assertTrue(!ConformanceRunner.passed(all));
        }
        assertEquals(RuleResult.Status.PASS, new ConformanceRules(unavailable, 5).requireAvailable(true)
                .check(Rule.R25_SERVICE_CONTRACT).status(), "the SPI contract runs without a device");
    }

    @Test
    void onlyRunsTheNamedRules() {
        ConformanceRules rules = new ConformanceRules(() -> new FlawedBackend(Flaw.SCALE_MISSING), 5)
                .only(Rule.parseList("required_rule16_forwardAfterCloseThrows, 25"));
        RuleResult skipped = rules.check(Rule.R01_OUTPUT_MATCHES_ORACLE);
        assertEquals(RuleResult.Status.SKIPPED, skipped.status());
        assertEquals("not selected (only rules 16, 25 run)", skipped.detail());
        // A named rule runs: rule 25 (the SPI contract) passes for this flaw; rule 16 now checks the answers of
        // calls running during close, which the missing scale makes wrong.
        assertEquals(RuleResult.Status.PASS, rules.check(Rule.R25_SERVICE_CONTRACT).status());
        assertEquals(RuleResult.Status.FAIL, rules.check(Rule.R16_FORWARD_AFTER_CLOSE).status());
        assertEquals(Rule.R22_FEATURE_COMBINATIONS, Rule.parse("r22"));
        assertEquals(Rule.R22_FEATURE_COMBINATIONS, Rule.parse("featureCombinations"));
        assertEquals(Rule.R22_FEATURE_COMBINATIONS, Rule.parse("R22_FEATURE_COMBINATIONS"));
    }

    /** Issue 27, item 10: a huge number, non-ASCII digits, and lists that name no rule get one clear message. */
    @Test
    void ruleTextsThatNameNoRuleAreRefusedClearly() {
        for (String text : new String[] {"99999999999999999999", "\u0662\u0662", "0", "-3"}) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> Rule.parse(text));
            assertTrue(e.getMessage().matches("no conformance rule '" + java.util.regex.Pattern.quote(text)
                    + "': give a rule number \\(1-[0-9]+(, [0-9]+(-[0-9]+)?)*\\), a test name such as "
                    + "required_rule22_featureCombinations, or a list of them separated by commas"), e.getMessage());
        }
        for (String list : new String[] {"", ",,,", " , "}) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> Rule.parseList(list));
            assertTrue(e.getMessage().startsWith("no rule numbers given in '" + list + "'"), e.getMessage());
        }
        assertEquals(EnumSet.allOf(Rule.class), Rule.parseList(null));
        assertEquals(EnumSet.of(Rule.R12_THREAD_SAFE, Rule.R43_LARGE_FINITE_LOGITS), Rule.parseList("43,,12,"));
    }

    @Test
    void aBackendWithoutOptionalFeaturesRunsRule20AndSkipsRule21NamingLse() {
        Capabilities bare = Capabilities.builder("cpu").precisions(EnumSet.of(Precision.FP32)).headDims(1, 256).build();
        ConformanceRules rules = new ConformanceRules(() -> new FlawedBackend(Flaw.NONE, bare), ConformanceRules.DEFAULT_SEED);
        RuleResult nonFinite = rules.check(Rule.R20_NON_FINITE_INPUTS);
        assertEquals(RuleResult.Status.PASS, nonFinite.status(), nonFinite.detail());
        RuleResult merge = rules.check(Rule.R21_KEY_SPLITS_MERGE);
        assertEquals(RuleResult.Status.SKIPPED, merge.status());
        assertTrue(merge.detail().contains("does not declare LSE"), merge.detail());
        RuleResult caught = new ConformanceRules(() -> new FlawedBackend(Flaw.VALUE_NAN_POISONS_ROW, bare),
                ConformanceRules.DEFAULT_SEED).check(Rule.R20_NON_FINITE_INPUTS);
        assertEquals(RuleResult.Status.FAIL, caught.status(), "rule 20 checks the output without LSE too");
    }

    /** Rules 22 and 23 draw only what a backend declares. */
    @Test
    void aBackendWithoutOptionalFeaturesPassesTheNewRules() {
        Capabilities bare = Capabilities.builder("cpu").precisions(EnumSet.of(Precision.FP32)).headDims(4, 80).build();
        ConformanceRules rules = new ConformanceRules(() -> new FlawedBackend(Flaw.NONE, bare), ConformanceRules.DEFAULT_SEED);
        for (Rule rule : List.of(Rule.R12_THREAD_SAFE, Rule.R22_FEATURE_COMBINATIONS, Rule.R23_LONG_SEQUENCES)) {
            RuleResult r = rules.check(rule);
            assertEquals(RuleResult.Status.PASS, r.status(), rule + ": " + r.detail());
        }
    }

    @Test
    void optionalRulesSkipNamingTheCapability() {
        Capabilities none = Capabilities.builder("cpu").precisions(EnumSet.of(Precision.FP32)).headDims(1, 256).build();
        assertEquals("CAUSAL", ConformanceRules.missingCapability(Rule.R03_CAUSAL, none));
        assertEquals("LSE", ConformanceRules.missingCapability(Rule.R06_LSE, none));
        assertEquals("LSE", ConformanceRules.missingCapability(Rule.R21_KEY_SPLITS_MERGE, none));
        assertEquals("BACKWARD", ConformanceRules.missingCapability(Rule.R27_GRADIENTS_MATCH_ORACLE, none));
        assertEquals("BACKWARD", ConformanceRules.missingCapability(Rule.R37_GRADIENT_FEATURE_COMBINATIONS, none));
    }
}
