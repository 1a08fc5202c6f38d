package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.CaseGenerator.CaseKind;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * The gradient rules 27 to 37 of {@code RULES.md} (capability {@code backward}), run by
 * {@link ConformanceRules#check}. Every backward call gets the float64 oracle's forward output and LSE
 * of the same inputs, rounded to float32, and a random normal {@code dOut} drawn from the case seed,
 * so a forward error never shows as a gradient error and the same run seed replays the same calls.
 * Gradients are compared with {@link GradientOracle} by {@link GradientComparison}, with the
 * gradient tolerance of {@link Tolerance#gradient}.
 */
final class GradientRules {
    /** The raw bits of the NaN sentinel rules 33 and 37 fill the gradients with before a call. */
    static final int SENTINEL_BITS = 0x7fc5a5a5;
    private static final float SENTINEL = Float.intBitsToFloat(SENTINEL_BITS);
    private static final float POISON = 1.2345e30f;
    /** Threads of rule 32. */
    static final int THREADS = 4;
    /** Calls each thread of rule 32 makes. */
    static final int CALLS_PER_THREAD = 3;
    private static final String[] GRADIENTS = {"dq", "dk", "dv"};

    private final long seed;

    GradientRules(long seed) {
        this.seed = seed;
    }

    /**
     * The arguments of one backward call but the gradients: a case's {@code q}, {@code k}, {@code v},
     * a {@code dOut} drawn from its seed, and the oracle's forward output and LSE rounded to float32.
     */
    static final class Call {
        final AttentionCase c;
        final Tensor q;
        final Tensor k;
        final Tensor v;
        final Tensor dOut;
        Tensor out;
        float[] lse;
        private boolean[][] reached;

        Call(AttentionCase c) {
            this(c, c.q(), c.k(), c.v(), outputGradient(c));
        }

        Call(AttentionCase c, Tensor q, Tensor k, Tensor v, Tensor dOut) {
            this.c = c;
            this.q = q;
            this.k = k;
            this.v = v;
            this.dOut = dOut;
            refreshForward();
        }

        /** A call on copies of every input, to change them one element at a time. */
        Call copy() {
            return new Call(c, q.copy(), k.copy(), v.copy(), dOut.copy());
        }

        /** Recomputes the forward output and LSE the call passes from the current inputs. */
        void refreshForward() {
            AttentionProblem p = c.problem();
            DenseOracle.Result r = DenseOracle.compute(p, c.layout(), q, k, v);
            Tensor o = c.newOutput();
            int vdim = p.valueDim();
            for (int b = 0; b < p.batch(); b++) {
                for (int h = 0; h < p.queryHeads(); h++) {
                    for (int i = 0; i < p.queryLength(); i++) {
                        int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                        int at = o.offset(b, h, i);
                        for (int d = 0; d < vdim; d++) {
                            o.data()[at + d] = (float) r.out()[row * vdim + d];
                        }
                    }
                }
            }
            float[] l = new float[r.lse().length];
            for (int x = 0; x < l.length; x++) {
                l[x] = (float) r.lse()[x];
            }
            out = o;
            lse = l;
        }

        AttentionProblem problem() {
            return c.problem();
        }

        /** @return the query rows and keys some allowed pair reaches ({@link GradientComparison#reached}) */
        boolean[][] reached() {
            if (reached == null) {
                reached = GradientComparison.reached(c.problem(), c.layout());
            }
            return reached;
        }

        GradientOracle.Result expected() {
            return GradientOracle.compute(c.problem(), c.layout(), q, k, v, dOut);
        }

        /** @return zero gradients {@code {dq, dk, dv}}, each in its input's layout */
        Tensor[] newGradients() {
            AttentionProblem p = c.problem();
            return new Tensor[] {
                Tensor.zeros(q.layout(), p.batch(), p.queryHeads(), p.queryLength(), p.headDim()),
                Tensor.zeros(k.layout(), p.batch(), p.kvHeads(), p.keyLength(), p.headDim()),
                Tensor.zeros(v.layout(), p.batch(), p.kvHeads(), p.keyLength(), p.valueDim())};
        }

        /** @return the inputs as an injection addresses them: {@code {q, k, v, dOut}} */
        Tensor[] inputs() {
            return new Tensor[] {q, k, v, dOut};
        }

        @Override
        public String toString() {
            return c.toString();
        }
    }

    /** A random normal {@code dOut} in the output's layout, drawn from the case seed. */
    static Tensor outputGradient(AttentionCase c) {
        Tensor g = c.newOutput();
        Random rnd = new Random(c.seed() * 0x9E3779B97F4A7C15L + 27);
        for (int x = 0; x < g.data().length; x++) {
            g.data()[x] = (float) rnd.nextGaussian();
        }
        return g;
    }

    private List<AttentionCase> supported(Capabilities caps, CaseKind feature, Precision precision) {
        List<AttentionCase> out = new ArrayList<>();
        for (AttentionCase c : CaseGenerator.cases(feature, seed, precision)) {
            if (caps.unsupported(c.problem(), false, true).isEmpty()) {
                out.add(c);
            }
        }
        return out;
    }

    private static AttentionPlan openPlan(SparseAttention backend, Call call) {
        try {
            return backend.plan(call.problem(), call.c.layout());
        } catch (RuntimeException e) {
            throw new RuleFailure("case " + call + ": plan threw " + e, Double.NaN);
        }
    }

    private static void backward(AttentionPlan plan, Call call, Tensor[] grads, String what) {
        try {
            plan.backward(call.q, call.k, call.v, call.out, call.lse, call.dOut, grads[0], grads[1], grads[2]);
        } catch (RuntimeException e) {
            throw new RuleFailure(what + ": backward threw " + e, Double.NaN);
        }
    }

    /** Runs backward on a fresh plan over zero gradients. */
    private static Tensor[] runFresh(SparseAttention backend, Call call) {
        Tensor[] grads = call.newGradients();
        try (AttentionPlan plan = openPlan(backend, call)) {
            backward(plan, call, grads, "case " + call);
        }
        return grads;
    }

    private static double compare(String what, Call call, GradientOracle.Result expected, Tensor[] grads) {
        Comparison.Outcome o = GradientComparison.compare(call.reached(), expected, grads[0], grads[1], grads[2],
                Tolerance.gradient(call.problem().precision()));
        if (!o.ok()) {
            throw new RuleFailure(what + ": " + o.message(), o.worstRatio());
        }
        return o.worstRatio();
    }

    /** Each case on a fresh plan, its gradients against the oracle's. */
    static double againstOracle(SparseAttention backend, List<AttentionCase> cases) {
        double worst = 0;
        for (AttentionCase c : cases) {
            Call call = new Call(c);
            GradientOracle.Result expected = call.expected();
            worst = Math.max(worst, compare("case " + call, call, expected, runFresh(backend, call)));
        }
        return worst;
    }

    /**
     * Rule 43, backward: the large-logit cases, each against the oracle with an allowance that does not
     * grow with the logits ({@link GradientOracle#computeExactScores}: their scores are exact in float32).
     */
    double largeFiniteLogits(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : supported(caps, CaseKind.LARGE_LOGITS, p)) {
                Call call = new Call(c);
                GradientOracle.Result expected = GradientOracle.computeExactScores(c.problem(), c.layout(), call.q, call.k,
                        call.v, call.dOut);
                worst = Math.max(worst, compare("case " + call, call, expected, runFresh(backend, call)));
            }
        }
        return worst;
    }

    /** Rule 27: every pattern, tails, Nq != Nk, Dv != D, a custom scale, batch 2, block 64, BSHD. */
    double gradientsMatchOracle(SparseAttention backend) {
        return againstOracle(backend, CaseKind.CORE, CaseKind.TAILS, CaseKind.TENSOR_LAYOUTS);
    }

    /** The cases of {@code features}, in every precision the backend declares, against the oracle. */
    private double againstOracle(SparseAttention backend, CaseKind... features) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            List<AttentionCase> cases = new ArrayList<>();
            for (CaseKind f : features) {
                cases.addAll(supported(caps, f, p));
            }
            worst = Math.max(worst, againstOracle(backend, cases));
        }
        return worst;
    }

    /**
     * Rule 28: causal (also {@code Nq > Nk}, rows with no key, and a {@code causal(P)} layout), key and
     * query lengths (entries of length 0), an explicit layout with an empty row and a key block no row
     * reads; elements no allowed pair reaches must be exactly zero.
     */
    double gradientMasks(SparseAttention backend) {
        return againstOracle(backend, CaseKind.EMPTY_ROWS, CaseKind.CAUSAL, CaseKind.LENGTHS);
    }

    /** Rule 29: GQA and MQA, and GQA with {@code Dv != D}, a tail and BSHD tensors. */
    double gradientGroupedQuery(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            List<AttentionCase> cases = new ArrayList<>(supported(caps, CaseKind.GROUPED_QUERY, p));
            supported(caps, CaseKind.NON_FINITE, p).stream().filter(c -> c.name().startsWith("gqa")).forEach(cases::add);
            worst = Math.max(worst, againstOracle(backend, cases));
        }
        return worst;
    }

    /** Uniformly random elements per tensor and value that rule 30 injects (besides the chosen places). */
    static final int RANDOM_INJECTIONS = 1;

    /**
     * Rule 30: one NaN, {@code +∞} or {@code −∞} at a time in {@code q}, {@code k}, {@code v} or
     * {@code dOut} ({@link NonFiniteInjection#positions(AttentionCase, boolean, int)}), the forward output
     * and LSE passed recomputed by the oracle from the injected inputs, gradients compared element by
     * element with the oracle's on the same inputs. Each case runs once without injection first.
     */
    double gradientNonFinite(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : supported(caps, CaseKind.NON_FINITE, p)) {
                Call call = new Call(c, c.q().copy(), c.k().copy(), c.v().copy(), outputGradient(c));
                Tensor[] inputs = call.inputs();
                try (AttentionPlan plan = openPlan(backend, call)) {
                    worst = Math.max(worst, injected(plan, call, null));
                    Tensor finiteOut = call.out;
                    float[] finiteLse = call.lse;
                    for (NonFiniteInjection at : NonFiniteInjection.positions(c, true, RANDOM_INJECTIONS)) {
                        float old = at.apply(inputs);
                        if (at.tensor() < 3) {
                            call.refreshForward();
                        }
                        worst = Math.max(worst, injected(plan, call, at));
                        at.undo(inputs, old);
                        call.out = finiteOut.copy();
                        call.lse = finiteLse.clone();
                    }
                }
            }
        }
        return worst;
    }

    private static double injected(AttentionPlan plan, Call call, NonFiniteInjection at) {
        String what = "case " + call + (at == null ? " before any injection" : " with " + at);
        // The oracle first: it sees exactly the inputs the backend is given, whatever the backend does to them.
        GradientOracle.Result expected = call.expected();
        Tensor[] grads = call.newGradients();
        backward(plan, call, grads, what);
        return compare(what, call, expected, grads);
    }

    /** The case of rules 31 and 32: batch 2, GQA when declared, tails, {@code Dv != D}, BigBird with global rows. */
    private AttentionCase mediumCase(Capabilities caps) {
        Precision p = caps.precisions().iterator().next();
        AttentionProblem problem = AttentionProblem.builder().batch(2).heads(4).kvHeads(caps.has(Feature.GROUPED_QUERY) ? 2 : 4)
                .queryLength(100).keyLength(120).headDim(headDim(caps, 16)).valueDim(headDim(caps, 24)).precision(p)
                .build();
        return AttentionCase.random("backward gqa nq 100 nk 120 dv != d", seed + 31, problem,
                Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=3)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
    }

    /** A head dim the backend accepts, as close to {@code want} as its limits allow. */
    private static int headDim(Capabilities caps, int want) {
        return Math.max(caps.minHeadDim(), Math.min(caps.maxHeadDim(), want));
    }

    /** The first bit-level difference of two sets of gradients, as {@code dk at (b, h, i, d): x where y (...)}. */
    private static Optional<String> difference(Tensor[] expected, Tensor[] got) {
        for (int t = 0; t < 3; t++) {
            Optional<String> d = Comparison.bitDifference(expected[t], got[t]);
            if (d.isPresent()) {
                return Optional.of(GRADIENTS[t] + " " + (t == 0 ? d.get() : d.get().replace(", i=", ", j=")));
            }
        }
        return Optional.empty();
    }

    /** Rule 31: two calls on one plan and a call on a new plan give bit-identical gradients. */
    double gradientDeterministic(SparseAttention backend) {
        Call call = new Call(mediumCase(backend.capabilities()));
        Tensor[][] grads = {call.newGradients(), call.newGradients(), call.newGradients()};
        try (AttentionPlan plan = openPlan(backend, call)) {
            backward(plan, call, grads[0], "case " + call);
            backward(plan, call, grads[1], "case " + call + ", a second call");
        }
        try (AttentionPlan plan = openPlan(backend, call)) {
            backward(plan, call, grads[2], "case " + call + ", a call on a new plan");
        }
        String[] what = {null, "a second call on the same plan", "a call on a new plan"};
        for (int x = 1; x < 3; x++) {
            Optional<String> d = difference(grads[0], grads[x]);
            if (d.isPresent()) {
                throw new RuleFailure("case " + call + ": " + what[x] + " differs bit for bit from the first backward call, "
                        + d.get(), Double.NaN);
            }
        }
        return Double.NaN;
    }

    /**
     * Rule 32: {@value #THREADS} threads call backward on one plan at once, each with its own inputs,
     * {@value #CALLS_PER_THREAD} times; each result must equal, bit for bit, a serial call's on the same
     * inputs, the first call of a new plan (so the reference does not depend on how many calls the shared
     * plan made before it: a result that changes from call to call differs in half the concurrent calls
     * whatever the threads' order, not only when they happen to run out of step).
     */
    double threadSafeBackward(SparseAttention backend) {
        AttentionCase base = mediumCase(backend.capabilities());
        Call[] inputs = new Call[THREADS];
        List<Tensor[]> serial = new ArrayList<>();
        Call first = new Call(base);
        for (int t = 0; t < THREADS; t++) {
            inputs[t] = new Call(base.withInputs(base.seed() + 1 + t));
            Tensor[] grads = inputs[t].newGradients();
            try (AttentionPlan plan = openPlan(backend, inputs[t])) {
                backward(plan, inputs[t], grads, "case " + base + ", serial call " + t + " on a new plan");
            }
            serial.add(grads);
        }
        try (AttentionPlan plan = openPlan(backend, first)) {
            return ConcurrentCalls.check("backward", "case " + base, CALLS_PER_THREAD, serial, t -> () -> {
                Call mine = inputs[t];
                Tensor[] grads = mine.newGradients();
                plan.backward(mine.q, mine.k, mine.v, mine.out, mine.lse, mine.dOut, grads[0], grads[1], grads[2]);
                return grads;
            }, GradientRules::difference);
        }
    }

    /** @return where the first element still holding the sentinel is, or empty */
    private static Optional<String> unwritten(Tensor[] grads) {
        for (int t = 0; t < 3; t++) {
            Tensor g = grads[t];
            for (int b = 0; b < g.batch(); b++) {
                for (int h = 0; h < g.heads(); h++) {
                    for (int n = 0; n < g.length(); n++) {
                        int o = g.offset(b, h, n);
                        for (int d = 0; d < g.dim(); d++) {
                            if (Float.floatToRawIntBits(g.data()[o + d]) == SENTINEL_BITS) {
                                return Optional.of(String.format("%s at (b=%d, h=%d, %s=%d, d=%d) was never written (still "
                                        + "holds the NaN sentinel 0x%08x)", GRADIENTS[t], b, h, t == 0 ? "i" : "j", n, d,
                                        SENTINEL_BITS));
                            }
                        }
                    }
                }
            }
        }
        return Optional.empty();
    }

    private static Tensor[] sentinelGradients(Call call) {
        Tensor[] grads = call.newGradients();
        for (Tensor g : grads) {
            Arrays.fill(g.data(), SENTINEL);
        }
        return grads;
    }

    /**
     * Rule 33: over gradients filled with a NaN sentinel, every element is written: empty rows, tails,
     * key and query lengths, BSHD, causal.
     */
    double gradientEveryElementWritten(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        Precision p = caps.precisions().iterator().next();
        List<AttentionCase> cases = new ArrayList<>(supported(caps, CaseKind.EMPTY_ROWS, p));
        cases.addAll(supported(caps, CaseKind.TAILS, p));
        cases.addAll(supported(caps, CaseKind.LENGTHS, p));
        cases.addAll(supported(caps, CaseKind.TENSOR_LAYOUTS, p));
        cases.addAll(supported(caps, CaseKind.CAUSAL, p));
        for (AttentionCase c : cases) {
            Call call = new Call(c);
            Tensor[] grads = sentinelGradients(call);
            try (AttentionPlan plan = openPlan(backend, call)) {
                backward(plan, call, grads, "case " + call);
            }
            Optional<String> missed = unwritten(grads);
            if (missed.isPresent()) {
                throw new RuleFailure("case " + call + ": " + missed.get(), Double.NaN);
            }
        }
        return Double.NaN;
    }

    /** Rule 34: {@code q}, {@code k}, {@code v}, {@code out}, {@code lse} and {@code dOut} are bit-identical after backward. */
    double backwardInputsNotModified(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        for (Precision p : caps.precisions()) {
            List<AttentionCase> core = supported(caps, CaseKind.CORE, p);
            List<AttentionCase> cases = new ArrayList<>(core.subList(0, Math.min(3, core.size())));
            cases.addAll(supported(caps, CaseKind.TENSOR_LAYOUTS, p));
            cases.addAll(supported(caps, CaseKind.LENGTHS, p));
            cases.addAll(supported(caps, CaseKind.TAILS, p));
            for (AttentionCase c : cases) {
                Call call = new Call(c, c.q().copy(), c.k().copy(), c.v().copy(), outputGradient(c));
                Tensor[] before = {call.q.copy(), call.k.copy(), call.v.copy(), call.out.copy(), call.dOut.copy()};
                float[] lseBefore = call.lse.clone();
                runFresh(backend, call);
                String[] names = {"q", "k", "v", "out", "dOut"};
                Tensor[] after = {call.q, call.k, call.v, call.out, call.dOut};
                for (int t = 0; t < names.length; t++) {
                    Optional<String> changed = Comparison.bitDifference(before[t], after[t]);
                    if (changed.isPresent()) {
                        String at = changed.get().replace(" where ", " where it held ");
                        throw new RuleFailure("case " + call + ": backward modified its input " + names[t] + " "
                                + (t == 1 || t == 2 ? at.replace(", i=", ", j=") : at), Double.NaN);
                    }
                }
                for (int x = 0; x < lseBefore.length; x++) {
                    if (Float.floatToRawIntBits(lseBefore[x]) != Float.floatToRawIntBits(call.lse[x])) {
                        AttentionProblem pr = call.problem();
                        throw new RuleFailure(String.format("case %s: backward modified its input lse at (b=%d, h=%d, i=%d):"
                                + " %s where it held %s", call, x / pr.queryLength() / pr.queryHeads(),
                                x / pr.queryLength() % pr.queryHeads(), x % pr.queryLength(), call.lse[x], lseBefore[x]),
                                Double.NaN);
                    }
                }
            }
        }
        return Double.NaN;
    }

    /** The names of backward's arguments, in order. */
    private static final String[] ARGUMENTS = {"q", "k", "v", "out", "lse", "dOut", "dq", "dk", "dv"};

    /**
     * Rule 35: each of the nine arguments with a wrong shape, {@code lse}, {@code dOut} and each gradient
     * missing, and gradients sharing an array with an input or with each other: each call throws
     * IllegalArgumentException naming the argument, and no gradient array changes.
     */
    double backwardBadInputRefused(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        int dim = headDim(caps, 16);
        AttentionProblem pr = AttentionProblem.builder().heads(2).length(64).headDim(dim).valueDim(dim)
                .precision(caps.precisions().iterator().next()).build();
        AttentionCase c = AttentionCase.random("backward bad input", seed + 35, pr,
                Patterns.parse("window(block=16, blocks=3)"), TensorLayout.BHSD, AttentionCase.Values.NORMAL);
        Call good = new Call(c);
        int b = pr.batch();
        int hq = pr.queryHeads();
        int hkv = pr.kvHeads();
        int nq = pr.queryLength();
        int nk = pr.keyLength();
        int dv = pr.valueDim();
        TensorLayout bhsd = TensorLayout.BHSD;
        // {what, argument replaced, the replacement (a fresh object, or the index of the argument whose array it
        // shares), the argument the message must name}
        Object[][] variants = {
            {"q with head dim D+1", 0, Tensor.zeros(bhsd, b, hq, nq, dim + 1), "q"},
            {"k with Nk-1 keys", 1, Tensor.zeros(bhsd, b, hkv, nk - 1, dim), "k"},
            {"v with value dim Dv+1", 2, Tensor.zeros(bhsd, b, hkv, nk, dv + 1), "v"},
            {"out with Hq+1 heads", 3, Tensor.zeros(bhsd, b, hq + 1, nq, dv), "out"},
            {"lse with one float too few", 4, new float[pr.lseSize() - 1], "lse"},
            {"dOut with Nq-1 rows", 5, Tensor.zeros(bhsd, b, hq, nq - 1, dv), "dOut"},
            {"dq with batch B+1", 6, Tensor.zeros(bhsd, b + 1, hq, nq, dim), "dq"},
            {"dk with Hkv+1 heads", 7, Tensor.zeros(bhsd, b, hkv + 1, nk, dim), "dk"},
            {"dv with Nk+1 keys", 8, Tensor.zeros(bhsd, b, hkv, nk + 1, dv), "dv"},
            {"a missing lse (null)", 4, null, "lse"},
            {"a missing dOut (null)", 5, null, "dOut"},
            {"a missing dq (null)", 6, null, "dq"},
            {"a missing dk (null)", 7, null, "dk"},
            {"a missing dv (null)", 8, null, "dv"},
            {"dq sharing q's array", 6, 0, "dq"},
            {"dk sharing k's array", 7, 1, "dk"},
            {"dv sharing v's array", 8, 2, "dv"},
            {"dq sharing out's array", 6, 3, "dq"},
            {"dk sharing dOut's array", 7, 5, "dk"},
            {"dk sharing dq's array", 7, 6, "dk"},
            {"dv sharing dq's array", 8, 6, "dv"},
            {"dv sharing dk's array", 8, 7, "dv"},
        };
        try (AttentionPlan plan = openPlan(backend, good)) {
            for (Object[] variant : variants) {
                Call call = good.copy();
                Tensor[] grads = call.newGradients();
                Object[] args = {call.q, call.k, call.v, call.out, call.lse, call.dOut, grads[0], grads[1], grads[2]};
                for (int g = 6; g < 9; g++) {
                    Arrays.fill(((Tensor) args[g]).data(), POISON);
                }
                int index = (Integer) variant[1];
                Object replacement = variant[2] instanceof Integer shared ? args[shared] : variant[2];
                if (replacement instanceof Tensor t && index >= 6 && !(variant[2] instanceof Integer)) {
                    Arrays.fill(t.data(), POISON);
                }
                args[index] = replacement;
                List<float[]> watched = new ArrayList<>();
                List<float[]> snapshots = new ArrayList<>();
                for (int g = 6; g < 9; g++) {
                    if (args[g] instanceof Tensor t) {
                        watched.add(t.data());
                        snapshots.add(t.data().clone());
                    }
                }
                RuntimeException thrown = null;
                try {
                    plan.backward((Tensor) args[0], (Tensor) args[1], (Tensor) args[2], (Tensor) args[3], (float[]) args[4],
                            (Tensor) args[5], (Tensor) args[6], (Tensor) args[7], (Tensor) args[8]);
                } catch (RuntimeException e) {
                    thrown = e;
                }
                String what = "backward with " + variant[0];
                if (!(thrown instanceof IllegalArgumentException)) {
                    throw new RuleFailure(what + " must throw IllegalArgumentException but "
                            + (thrown == null ? "returned normally" : "threw " + thrown), Double.NaN);
                }
                for (int x = 0; x < watched.size(); x++) {
                    if (!Arrays.equals(watched.get(x), snapshots.get(x))) {
                        throw new RuleFailure(what + " wrote into a gradient before refusing (every check comes before any "
                                + "write)", Double.NaN);
                    }
                }
                String message = thrown.getMessage() == null ? "" : thrown.getMessage();
                String name = (String) variant[3];
                if (!message.matches("(?s)(.*[^A-Za-z])?" + name + "([^A-Za-z].*)?")) {
                    throw new RuleFailure(what + " threw IllegalArgumentException(\"" + message + "\"), which does not name "
                            + name + "; say which argument is wrong (DESIGN section 5)", Double.NaN);
                }
            }
        }
        return Double.NaN;
    }

    /** Rule 36: backward on a closed plan throws IllegalStateException. */
    double backwardAfterClose(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        AttentionCase c = supported(caps, CaseKind.CORE, caps.precisions().iterator().next()).get(0);
        Call call = new Call(c);
        AttentionPlan plan = openPlan(backend, call);
        backward(plan, call, call.newGradients(), "case " + call + " before close");
        plan.close();
        Tensor[] grads = call.newGradients();
        try {
            plan.backward(call.q, call.k, call.v, call.out, call.lse, call.dOut, grads[0], grads[1], grads[2]);
        } catch (IllegalStateException expected) {
            return Double.NaN;
        } catch (RuntimeException e) {
            throw new RuleFailure("backward after close must throw IllegalStateException but threw " + e, Double.NaN);
        }
        throw new RuleFailure("backward after close must throw IllegalStateException but returned normally", Double.NaN);
    }

    /**
     * Rule 37: every case of {@link CombinationGenerator#generate} (rule 22's, for the backend's
     * capabilities), each through backward on a fresh plan over gradients filled with the NaN sentinel,
     * every element compared with the gradient oracle.
     */
    double gradientFeatureCombinations(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        double worst = 0;
        for (CombinationGenerator.Combination x : CombinationGenerator.generate(caps, seed)) {
            AttentionCase c = x.testCase();
            if (!caps.unsupported(c.problem(), false, true).isEmpty()) {
                continue;
            }
            Call call = new Call(c);
            GradientOracle.Result expected = call.expected();
            Tensor[] grads = sentinelGradients(call);
            try (AttentionPlan plan = openPlan(backend, call)) {
                backward(plan, call, grads, "case " + call);
            }
            Optional<String> missed = unwritten(grads);
            if (missed.isPresent()) {
                throw new RuleFailure("case " + call + ": " + missed.get(), Double.NaN);
            }
            worst = Math.max(worst, compare("case " + call, call, expected, grads));
        }
        return worst;
    }
}
