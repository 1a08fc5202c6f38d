package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.ExplicitPattern;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.StringJoiner;

/**
 * Whole problems for rule 22: a seeded generator that combines every feature of DESIGN sections 2
 * to 4 a backend declares, so that defects needing two features at once (an offset wrong only for
 * batch &gt; 1 with GQA, LSE misplaced only with BSHD, causal alignment that reads per-entry lengths)
 * meet a case that shows them.
 *
 * <p>Each {@link Parameter} has a small set of values ({@link #domains}), restricted to what the
 * backend's {@link Capabilities} declare: no GQA values for a backend without grouped queries, only
 * its precisions, only head dims in its limits. {@link #pairwise} draws rows so that every pair of
 * values of every two parameters occurs in at least one row (a pairwise covering array, built
 * greedily and deterministically from the seed); {@link #generate} turns each row into a case,
 * drawing what no parameter fixes (exact lengths, block sizes, pattern arguments, key and query
 * lengths, scale, inputs) from the seed and the row's index. {@link #observe} reads the parameter
 * values back from a built case, so a test can prove the coverage on the cases themselves.
 *
 * <p>Sizes: each case costs at most {@value #CASE_COST} multiply-adds in the oracle
 * ({@code B·Hq·Nq·Nk·(D + Dv)}); lengths shrink when batch, heads and head dims are large.
 */
public final class CombinationGenerator {
    /** Largest head dim drawn: the backend's declared maximum, or this when it declares more. */
    public static final int TOP_HEAD_DIM = 256;
    /** Most multiply-adds of one case in the float64 oracle, {@code B·Hq·Nq·Nk·(D + Dv)}. */
    public static final long CASE_COST = 1_500_000;
    /** Candidate rows tried for each row of the covering array; the best one is kept. */
    private static final int CANDIDATES = 24;

    /** What a generated problem varies; each has a few values, see {@link #domains}. */
    public enum Parameter {
        /** {@code B}: 1, 2 or 3. */
        BATCH,
        /** {@code mha} ({@code Hq = Hkv}), {@code gqa} ({@code Hq > Hkv > 1}), {@code mqa} ({@code Hkv = 1 < Hq}). */
        HEADS,
        /** {@code nq=nk}, {@code nq<nk}, {@code nq>nk}. */
        LENGTHS,
        /** {@code aligned} (both lengths multiples of their block size) or {@code partial} (a tail block). */
        TAIL,
        /**
         * {@code D}: {@code odd} (odd, not prime, below 64), {@code prime} (below 64), {@code even} (below 64),
         * {@code 64}, {@code above64}, {@code top} (the declared maximum, or {@value #TOP_HEAD_DIM} when larger).
         */
        HEAD_DIM,
        /** {@code Dv}: {@code same} as {@code D} or {@code other}. */
        VALUE_DIM,
        /** Memory order of {@code q}: {@code bhsd} or {@code bshd}. */
        Q_LAYOUT,
        /** Memory order of {@code k}. */
        K_LAYOUT,
        /** Memory order of {@code v}. */
        V_LAYOUT,
        /** Memory order of the output. */
        OUT_LAYOUT,
        /** {@code none}, {@code problem} (a causal problem) or {@code pattern} (a causal layout, the problem not causal). */
        CAUSAL,
        /** Per-batch key lengths: {@code none} or {@code set} (some entry below {@code Nk}, zeros included). */
        KEY_LENGTHS,
        /** Per-batch query lengths: {@code none} or {@code set}. */
        QUERY_LENGTHS,
        /** Whether the LSE output is asked for: {@code off} or {@code on}. */
        LSE,
        /**
         * Every built-in pattern by name, {@code explicit} (a per-head or shared block matrix) and
         * {@code csr-unequal-blocks} (a layout from CSR arrays with different query and key block sizes).
         */
        PATTERN,
        /** A declared precision: {@code fp32}, {@code tf32}, {@code bf16}. */
        PRECISION
    }

    /** The patterns of {@link Parameter#PATTERN}. */
    static final List<String> PATTERN_VALUES = List.of("dense", "window", "global", "random", "bigbird", "longformer",
            "fixed", "strided", "union", "explicit", "csr-unequal-blocks");

    private static final int[] ODD = {1, 9, 15, 21, 25, 27, 33, 35, 45, 63};
    private static final int[] PRIME = {3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61};
    private static final int[] EVEN = {2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 30, 32, 40, 48, 62};
    private static final int[] ABOVE_64 = {65, 66, 67, 71, 72, 80, 96, 97, 100, 112, 127, 128, 131, 160, 192, 200, 255};

    /**
     * One generated case and the parameter values it was drawn for.
     *
     * @param index position in the generated list, from 0
     * @param values the value of every parameter
     * @param testCase the case
     * @param lse whether the LSE output is asked for
     */
    public record Combination(int index, Map<Parameter, String> values, AttentionCase testCase, boolean lse) {
        /** @return the values as one line, e.g. {@code batch=2 heads=gqa lengths=nq<nk ...} */
        public String describe() {
            StringJoiner j = new StringJoiner(" ");
            values.forEach((p, v) -> j.add(p.name().toLowerCase(Locale.ROOT) + "=" + v));
            return j.toString();
        }
    }

    private CombinationGenerator() {
    }

    /**
     * The values each parameter takes for a backend with these capabilities.
     *
     * @param caps the backend's capabilities
     * @return every parameter with at least one value, in {@link Parameter} order
     */
    public static Map<Parameter, List<String>> domains(Capabilities caps) {
        Map<Parameter, List<String>> d = new EnumMap<>(Parameter.class);
        d.put(Parameter.BATCH, List.of("1", "2", "3"));
        d.put(Parameter.HEADS, caps.has(Feature.GROUPED_QUERY) ? List.of("mha", "gqa", "mqa") : List.of("mha"));
        d.put(Parameter.LENGTHS, List.of("nq=nk", "nq<nk", "nq>nk"));
        d.put(Parameter.TAIL, List.of("aligned", "partial"));
        List<String> dims = new ArrayList<>();
        for (String c : List.of("odd", "prime", "even", "64", "above64", "top")) {
            if (!headDims(caps, c).isEmpty()) {
                dims.add(c);
            }
        }
        d.put(Parameter.HEAD_DIM, dims);
        d.put(Parameter.VALUE_DIM, allHeadDims(caps).size() > 1 ? List.of("same", "other") : List.of("same"));
        for (Parameter p : List.of(Parameter.Q_LAYOUT, Parameter.K_LAYOUT, Parameter.V_LAYOUT, Parameter.OUT_LAYOUT)) {
            d.put(p, List.of("bhsd", "bshd"));
        }
        d.put(Parameter.CAUSAL, caps.has(Feature.CAUSAL) ? List.of("none", "problem", "pattern") : List.of("none"));
        d.put(Parameter.KEY_LENGTHS, caps.has(Feature.KEY_LENGTHS) ? List.of("none", "set") : List.of("none"));
        d.put(Parameter.QUERY_LENGTHS, caps.has(Feature.QUERY_LENGTHS) ? List.of("none", "set") : List.of("none"));
        d.put(Parameter.LSE, caps.has(Feature.LSE) ? List.of("off", "on") : List.of("off"));
        d.put(Parameter.PATTERN, PATTERN_VALUES);
        List<String> precisions = new ArrayList<>();
        for (Precision p : Precision.values()) {
            if (caps.precisions().contains(p)) {
                precisions.add(p.name().toLowerCase(Locale.ROOT));
            }
        }
        d.put(Parameter.PRECISION, precisions);
        return d;
    }

    /** @return the largest head dim drawn for these capabilities */
    static int top(Capabilities caps) {
        return Math.min(caps.maxHeadDim(), TOP_HEAD_DIM);
    }

    /**
     * The class of a head dim, as {@link Parameter#HEAD_DIM} names it.
     *
     * @param d the head dim
     * @param top the largest head dim drawn ({@link #top})
     * @return {@code top}, {@code 64}, {@code above64}, {@code even}, {@code prime} or {@code odd}
     */
    static String headDimClass(int d, int top) {
        if (d == top && top > 64) {
            return "top";
        }
        if (d == 64) {
            return "64";
        }
        if (d > 64) {
            return "above64";
        }
        if (d % 2 == 0) {
            return "even";
        }
        return isPrime(d) ? "prime" : "odd";
    }

    private static boolean isPrime(int n) {
        if (n < 2) {
            return false;
        }
        for (int f = 2; f * f <= n; f++) {
            if (n % f == 0) {
                return false;
            }
        }
        return true;
    }

    /** The candidate head dims of one class within the backend's limits. */
    private static List<Integer> headDims(Capabilities caps, String headDimClass) {
        int top = top(caps);
        int[] candidates = switch (headDimClass) {
            case "odd" -> ODD;
            case "prime" -> PRIME;
            case "even" -> EVEN;
            case "64" -> new int[] {64};
            case "above64" -> ABOVE_64;
            case "top" -> new int[] {top};
            default -> throw new IllegalArgumentException(headDimClass);
        };
        List<Integer> out = new ArrayList<>();
        for (int d : candidates) {
            if (d >= caps.minHeadDim() && d <= top && headDimClass(d, top).equals(headDimClass)) {
                out.add(d);
            }
        }
        return out;
    }

    private static List<Integer> allHeadDims(Capabilities caps) {
        List<Integer> all = new ArrayList<>();
        for (String c : List.of("odd", "prime", "even", "64", "above64", "top")) {
            all.addAll(headDims(caps, c));
        }
        return all;
    }

    /**
     * Rows that together hold every pair of values of every two parameters (a pairwise covering
     * array), built greedily: each row starts from a pair not yet covered, the other parameters
     * take the value that covers most new pairs (ties drawn at random), and the best of
     * {@value #CANDIDATES} candidates is kept. The same domains and seed always give the same rows.
     *
     * @param domains the values of each parameter. Not modified.
     * @param seed the seed
     * @return the rows, each with a value for every parameter in {@code domains}
     */
    public static List<Map<Parameter, String>> pairwise(Map<Parameter, List<String>> domains, long seed) {
        List<Parameter> params = new ArrayList<>(domains.keySet());
        int n = params.size();
        int[] size = new int[n];
        for (int i = 0; i < n; i++) {
            size[i] = domains.get(params.get(i)).size();
        }
        // covered[i][j][a * size[j] + b]: the pair (param i = a, param j = b), i < j.
        boolean[][][] covered = new boolean[n][n][];
        int uncovered = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                covered[i][j] = new boolean[size[i] * size[j]];
                uncovered += size[i] * size[j];
            }
        }
        Random rnd = new Random(seed);
        List<int[]> rows = new ArrayList<>();
        while (uncovered > 0) {
            int[] start = firstUncovered(covered, size, rnd);
            int[] best = null;
            int bestGain = -1;
            for (int c = 0; c < CANDIDATES; c++) {
                int[] row = candidate(start, covered, size, rnd);
                int gain = gain(row, covered, size);
                if (gain > bestGain) {
                    best = row;
                    bestGain = gain;
                }
            }
            for (int i = 0; i < n; i++) {
                for (int j = i + 1; j < n; j++) {
                    int x = best[i] * size[j] + best[j];
                    if (!covered[i][j][x]) {
                        covered[i][j][x] = true;
                        uncovered--;
                    }
                }
            }
            rows.add(best);
        }
        List<Map<Parameter, String>> out = new ArrayList<>();
        for (int[] row : rows) {
            Map<Parameter, String> m = new EnumMap<>(Parameter.class);
            for (int i = 0; i < n; i++) {
                m.put(params.get(i), domains.get(params.get(i)).get(row[i]));
            }
            out.add(Collections.unmodifiableMap(m));
        }
        return out;
    }

    /** @return {@code {i, a, j, b}}: an uncovered pair, scanning from a random parameter pair */
    private static int[] firstUncovered(boolean[][][] covered, int[] size, Random rnd) {
        int n = size.length;
        int offset = rnd.nextInt(n * n);
        for (int s = 0; s < n * n; s++) {
            int i = (offset + s) % (n * n) / n;
            int j = (offset + s) % n;
            if (j <= i) {
                continue;
            }
            for (int x = 0; x < covered[i][j].length; x++) {
                if (!covered[i][j][x]) {
                    return new int[] {i, x / size[j], j, x % size[j]};
                }
            }
        }
        throw new IllegalStateException("no uncovered pair left");
    }

    private static int[] candidate(int[] start, boolean[][][] covered, int[] size, Random rnd) {
        int n = size.length;
        int[] row = new int[n];
        Arrays.fill(row, -1);
        row[start[0]] = start[1];
        row[start[2]] = start[3];
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Collections.shuffle(order, rnd);
        for (int p : order) {
            if (row[p] >= 0) {
                continue;
            }
            int bestValue = 0;
            int bestNew = -1;
            int offset = rnd.nextInt(size[p]);
            for (int t = 0; t < size[p]; t++) {
                int v = (offset + t) % size[p];
                int fresh = 0;
                for (int q = 0; q < n; q++) {
                    if (q == p || row[q] < 0) {
                        continue;
                    }
                    fresh += isCovered(covered, size, p, v, q, row[q]) ? 0 : 1;
                }
                if (fresh > bestNew) {
                    bestNew = fresh;
                    bestValue = v;
                }
            }
            row[p] = bestValue;
        }
        return row;
    }

    private static boolean isCovered(boolean[][][] covered, int[] size, int p, int a, int q, int b) {
        return p < q ? covered[p][q][a * size[q] + b] : covered[q][p][b * size[p] + a];
    }

    private static int gain(int[] row, boolean[][][] covered, int[] size) {
        int g = 0;
        for (int i = 0; i < row.length; i++) {
            for (int j = i + 1; j < row.length; j++) {
                g += covered[i][j][row[i] * size[j] + row[j]] ? 0 : 1;
            }
        }
        return g;
    }

    /**
     * The cases of rule 22 for a backend: one per row of {@link #pairwise} over {@link #domains}.
     * Every case is within the capabilities (its problem, with LSE when asked, is supported).
     *
     * @param caps the backend's capabilities
     * @param seed the run seed
     * @return the combinations, in order
     */
    public static List<Combination> generate(Capabilities caps, long seed) {
        List<Map<Parameter, String>> rows = pairwise(domains(caps), seed);
        List<Combination> out = new ArrayList<>(rows.size());
        for (int i = 0; i < rows.size(); i++) {
            out.add(build(caps, rows.get(i), i, rows.size(), seed * 1_000_003L + i));
        }
        return out;
    }

    /**
     * Builds one case for one row.
     *
     * @param caps the backend's capabilities
     * @param values the value of every parameter
     * @param index the row's index
     * @param total how many rows there are (for the case's name)
     * @param caseSeed seed of everything the row leaves open
     * @return the combination
     */
    static Combination build(Capabilities caps, Map<Parameter, String> values, int index, int total, long caseSeed) {
        Random rnd = new Random(caseSeed);
        int batch = Integer.parseInt(values.get(Parameter.BATCH));
        int[] heads = switch (values.get(Parameter.HEADS)) {
            case "gqa" -> pick(rnd, new int[][] {{4, 2}, {6, 2}, {6, 3}, {8, 4}});
            case "mqa" -> pick(rnd, new int[][] {{2, 1}, {3, 1}, {4, 1}});
            default -> pick(rnd, new int[][] {{1, 1}, {2, 2}, {3, 3}});
        };
        List<Integer> dims = headDims(caps, values.get(Parameter.HEAD_DIM));
        int headDim = dims.get(rnd.nextInt(dims.size()));
        int valueDim = headDim;
        if (values.get(Parameter.VALUE_DIM).equals("other")) {
            List<Integer> others = new ArrayList<>(allHeadDims(caps));
            others.remove(Integer.valueOf(headDim));
            valueDim = others.get(rnd.nextInt(others.size()));
        }
        String pattern = values.get(Parameter.PATTERN);
        boolean csr = pattern.equals("csr-unequal-blocks");
        long perPair = (long) batch * heads[0] * (headDim + valueDim);
        int maxLength = (int) Math.max(8, Math.min(160, Math.sqrt((double) CASE_COST / perPair) * 1.4));
        int[] blocks = blockSizes(rnd, csr, maxLength);
        int[] lengths = lengths(rnd, values.get(Parameter.LENGTHS), values.get(Parameter.TAIL).equals("aligned"),
                blocks[0], blocks[1], maxLength, Math.max(4, CASE_COST / perPair));
        int nq = lengths[0];
        int nk = lengths[1];
        String causal = values.get(Parameter.CAUSAL);
        AttentionProblem.Builder pb = AttentionProblem.builder().batch(batch).heads(heads[0]).kvHeads(heads[1])
                .queryLength(nq).keyLength(nk).headDim(headDim).valueDim(valueDim).causal(causal.equals("problem"))
                .precision(Precision.valueOf(values.get(Parameter.PRECISION).toUpperCase(Locale.ROOT)));
        if (rnd.nextInt(3) == 0) {
            pb.scale((float) ((rnd.nextInt(6) == 0 ? -1 : 1) * (0.05 + 0.55 * rnd.nextDouble())));
        }
        if (values.get(Parameter.KEY_LENGTHS).equals("set")) {
            pb.keyLengths(perEntryLengths(rnd, batch, nk));
        }
        if (values.get(Parameter.QUERY_LENGTHS).equals("set")) {
            pb.queryLengths(perEntryLengths(rnd, batch, nq));
        }
        AttentionProblem problem = pb.build();
        PatternSpec spec = pattern(rnd, pattern, blocks, nq, nk, heads[0]);
        boolean causalLayout = !causal.equals("none");
        BlockLayout layout;
        if (causal.equals("pattern") && !(spec instanceof ExplicitPattern) && !(spec instanceof FixedLayoutPattern)) {
            spec = Patterns.parse("causal(" + spec.text() + ")");
            layout = spec.layout(nq, nk, heads[0]);
        } else {
            layout = spec.layout(nq, nk, heads[0], causalLayout);
        }
        TensorLayout[] tensorLayouts = new TensorLayout[4];
        Parameter[] layoutParams = {Parameter.Q_LAYOUT, Parameter.K_LAYOUT, Parameter.V_LAYOUT, Parameter.OUT_LAYOUT};
        for (int t = 0; t < 4; t++) {
            tensorLayouts[t] = TensorLayout.valueOf(values.get(layoutParams[t]).toUpperCase(Locale.ROOT));
        }
        Map<Parameter, String> copy = Collections.unmodifiableMap(new EnumMap<>(values));
        boolean lse = values.get(Parameter.LSE).equals("on");
        AttentionCase c = AttentionCase.random("combination " + (index + 1) + " of " + total + " ("
                + new Combination(index, copy, null, lse).describe() + ")", rnd.nextLong(), problem, spec, layout, tensorLayouts);
        return new Combination(index, copy, c, lse);
    }

    private static int[] pick(Random rnd, int[][] options) {
        return options[rnd.nextInt(options.length)];
    }

    /** @return {@code {queryBlock, keyBlock}}: equal, or different for a CSR layout; at most half the length bound */
    private static int[] blockSizes(Random rnd, boolean unequal, int maxLength) {
        int[] sizes = unequal ? new int[] {2, 3, 4, 6, 8, 12, 16} : new int[] {2, 4, 8, 16, 32};
        List<Integer> fit = new ArrayList<>();
        for (int s : sizes) {
            if (2 * s <= maxLength && (unequal || s >= 4 || maxLength < 8 * 4)) {
                fit.add(s);
            }
        }
        int q = fit.get(rnd.nextInt(fit.size()));
        if (!unequal) {
            return new int[] {q, q};
        }
        int k;
        do {
            k = fit.get(rnd.nextInt(fit.size()));
        } while (k == q);
        return new int[] {q, k};
    }

    /**
     * Lengths with the asked relation and tail, {@code Nq·Nk <= maxPairs} (drawn by rejection;
     * the bound doubles when nothing fits it).
     *
     * @return {@code {Nq, Nk}}
     */
    private static int[] lengths(Random rnd, String relation, boolean aligned, int bq, int bk, int maxLength,
                                 long maxPairs) {
        // The bound is relaxed only when no lengths fit it (an aligned nq=nk case with large blocks).
        for (long bound = maxPairs; ; bound *= 2) {
            for (int attempt = 0; attempt < 2_000; attempt++) {
                int nq;
                int nk;
                if (aligned) {
                    nq = bq * (1 + rnd.nextInt(Math.max(1, maxLength / bq)));
                    nk = bk * (1 + rnd.nextInt(Math.max(1, maxLength / bk)));
                    if (relation.equals("nq=nk")) {
                        int unit = lcm(bq, bk);
                        nq = unit * (1 + rnd.nextInt(Math.max(1, maxLength / unit)));
                        nk = nq;
                    }
                } else {
                    nq = rnd.nextInt(6) == 0 ? 1 + rnd.nextInt(3) : 1 + rnd.nextInt(maxLength);
                    nk = rnd.nextInt(6) == 0 ? 1 + rnd.nextInt(3) : 1 + rnd.nextInt(maxLength);
                    if (relation.equals("nq=nk")) {
                        nk = nq;
                    }
                    if (nq % bq == 0 && nk % bk == 0) {
                        continue;
                    }
                }
                boolean relationHolds = switch (relation) {
                    case "nq<nk" -> nq < nk;
                    case "nq>nk" -> nq > nk;
                    default -> nq == nk;
                };
                if (relationHolds && (long) nq * nk <= bound) {
                    return new int[] {nq, nk};
                }
            }
        }
    }

    private static int lcm(int a, int b) {
        int x = a;
        int y = b;
        while (y != 0) {
            int t = x % y;
            x = y;
            y = t;
        }
        return a / x * b;
    }

    /** Per-entry lengths in {@code [0, n]}: zeros and full entries included, some entry below {@code n}. */
    private static int[] perEntryLengths(Random rnd, int batch, int n) {
        int[] l = new int[batch];
        for (int b = 0; b < batch; b++) {
            int r = rnd.nextInt(8);
            l[b] = r < 2 ? n : r == 2 ? 0 : rnd.nextInt(n + 1);
        }
        boolean anyShort = false;
        for (int x : l) {
            anyShort |= x < n;
        }
        if (!anyShort) {
            l[rnd.nextInt(batch)] = rnd.nextInt(n);
        }
        return l;
    }

    /** The pattern of one case, its arguments drawn at random. */
    private static PatternSpec pattern(Random rnd, String name, int[] blocks, int nq, int nk, int heads) {
        int b = blocks[0];
        int s = rnd.nextInt(1000);
        String text = switch (name) {
            case "dense" -> "dense(block=" + b + ")";
            case "window" -> "window(block=" + b + ", blocks=" + (1 + 2 * rnd.nextInt(3)) + ")";
            case "global" -> "global(block=" + b + ", first=" + (1 + rnd.nextInt(2)) + ", last=" + rnd.nextInt(2) + ")";
            case "random" -> "random(block=" + b + ", blocks=" + (1 + rnd.nextInt(3)) + ", seed=" + s + ")";
            case "bigbird" -> "bigbird(block=" + b + ", window=" + (rnd.nextBoolean() ? 1 : 3) + ", global="
                    + (1 + rnd.nextInt(2)) + ", random=" + rnd.nextInt(3) + ", seed=" + s + ")";
            case "longformer" -> "longformer(block=" + b + ", window=3, global=" + (rnd.nextBoolean() ? "[0]" : "[0, -1]")
                    + ")";
            case "fixed" -> "fixed(block=" + b + ", local=" + (2 + rnd.nextInt(3)) + ", global=1)";
            case "strided" -> "strided(block=" + b + ", stride=" + (2 + rnd.nextInt(3)) + ")";
            case "union" -> rnd.nextBoolean()
                    ? "union(window(block=" + b + ", blocks=1), random(block=" + b + ", blocks=1, seed=" + s + "))"
                    : "union(strided(block=" + b + ", stride=3), global(block=" + b + ", first=1, last=0))";
            case "explicit" -> null;
            case "csr-unequal-blocks" -> null;
            default -> throw new IllegalArgumentException(name);
        };
        if (text != null) {
            return Patterns.parse(text);
        }
        int qb = blocks[0];
        int kb = blocks[1];
        int nqb = (nq + qb - 1) / qb;
        int nkb = (nk + kb - 1) / kb;
        int layouts = rnd.nextBoolean() ? 1 : heads;
        boolean[][][] mask = new boolean[layouts][nqb][nkb];
        for (boolean[][] head : mask) {
            for (boolean[] row : head) {
                for (int c = 0; c < nkb; c++) {
                    row[c] = rnd.nextInt(5) < 2;
                }
            }
            if (rnd.nextBoolean()) {
                Arrays.fill(head[rnd.nextInt(nqb)], false);
            }
        }
        if (name.equals("explicit")) {
            return layouts == 1 ? ExplicitPattern.of(qb, mask[0]) : ExplicitPattern.perHead(qb, mask);
        }
        BlockLayout l = BlockLayout.ofMask(nq, nk, qb, kb, false, mask);
        return new FixedLayoutPattern(l, "csr(" + (layouts == 1 ? "shared" : layouts + " heads") + ", " + nqb + "x" + nkb
                + " blocks of " + qb + " queries x " + kb + " keys)");
    }

    /**
     * The parameter values a built case really has, read from its problem, layout, tensors and
     * pattern: what the coverage test counts.
     *
     * @param c the combination
     * @param caps the capabilities it was generated for
     * @return the value of every parameter
     */
    public static Map<Parameter, String> observe(Combination c, Capabilities caps) {
        AttentionCase x = c.testCase();
        AttentionProblem p = x.problem();
        BlockLayout l = x.layout();
        Map<Parameter, String> m = new LinkedHashMap<>();
        m.put(Parameter.BATCH, String.valueOf(p.batch()));
        m.put(Parameter.HEADS, p.queryHeads() == p.kvHeads() ? "mha" : p.kvHeads() == 1 ? "mqa" : "gqa");
        m.put(Parameter.LENGTHS, p.queryLength() == p.keyLength() ? "nq=nk" : p.queryLength() < p.keyLength() ? "nq<nk"
                : "nq>nk");
        m.put(Parameter.TAIL, p.queryLength() % l.queryBlock() == 0 && p.keyLength() % l.keyBlock() == 0 ? "aligned"
                : "partial");
        m.put(Parameter.HEAD_DIM, headDimClass(p.headDim(), top(caps)));
        m.put(Parameter.VALUE_DIM, p.valueDim() == p.headDim() ? "same" : "other");
        m.put(Parameter.Q_LAYOUT, x.q().layout().name().toLowerCase(Locale.ROOT));
        m.put(Parameter.K_LAYOUT, x.k().layout().name().toLowerCase(Locale.ROOT));
        m.put(Parameter.V_LAYOUT, x.v().layout().name().toLowerCase(Locale.ROOT));
        m.put(Parameter.OUT_LAYOUT, x.outLayout().name().toLowerCase(Locale.ROOT));
        m.put(Parameter.CAUSAL, p.causal() ? "problem" : l.causal() ? "pattern" : "none");
        m.put(Parameter.KEY_LENGTHS, p.hasKeyLengths() ? "set" : "none");
        m.put(Parameter.QUERY_LENGTHS, p.hasQueryLengths() ? "set" : "none");
        m.put(Parameter.LSE, c.lse() ? "on" : "off");
        String pattern;
        if (x.pattern() instanceof FixedLayoutPattern) {
            pattern = l.queryBlock() != l.keyBlock() ? "csr-unequal-blocks" : "csr-equal-blocks";
        } else if (x.pattern() instanceof ExplicitPattern) {
            pattern = "explicit";
        } else {
            String text = x.pattern().text().replaceFirst("^causal\\(", "");
            pattern = text.substring(0, text.indexOf('('));
        }
        m.put(Parameter.PATTERN, pattern);
        m.put(Parameter.PRECISION, p.precision().name().toLowerCase(Locale.ROOT));
        return m;
    }
}
