package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.ElementType;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * Rule 44: results written into views. The LSE into a {@code [B, Hq, Nq, 1]} tensor view
 * ({@link AttentionPlan#forwardWithLse}: in {@code [B, Nq, Hq]} order inside a larger array, every
 * other float of a big-endian direct buffer, and a packed array written in place) and read back from
 * one by {@link AttentionPlan#backwardWithLse}; the gradients {@code dq}, {@code dk}, {@code dv} into
 * the slots of one fused {@code [B, N, 3, H, D]} gradient array (as a fused projection's gradient is
 * laid out), into a fused direct buffer, and into a BSHD view at an offset, a transposed
 * {@code [B, H, D, N]} view and a direct buffer when the shapes do not fuse. Every result must match
 * the oracle within the precision's tolerance; the storage around every view is filled with a NaN
 * sentinel and must keep it.
 *
 * <p>Rules 38 and 39 already cover strided and off-heap inputs and forward outputs; this rule is the
 * one a backend that writes its own gradients or LSE (not through {@code BasePlan}'s staging) is
 * judged by.
 */
final class OutputViewRules {
    private static final int SENTINEL_BITS = 0x7fc5a5a5;
    private static final float SENTINEL = Float.intBitsToFloat(SENTINEL_BITS);
    private static final int LEAD = 7;

    private final long seed;

    OutputViewRules(long seed) {
        this.seed = seed;
    }

    /** Rule 44. */
    double outputViews(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        boolean lse = caps.has(Feature.LSE);
        boolean backward = caps.has(Feature.BACKWARD);
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : cases(caps, p)) {
                if (lse) {
                    worst = Math.max(worst, forwardLse(backend, c, "lse in [B, Nq, Hq] order at float " + LEAD
                            + " of a larger array", lseInsideArray(c.problem())));
                    worst = Math.max(worst, forwardLse(backend, c, "lse at every other float of a big-endian direct "
                            + "buffer", lseInDirectBuffer(c.problem())));
                    worst = Math.max(worst, forwardLse(backend, c, "lse as a packed [B, Hq, Nq, 1] array",
                            lsePacked(c.problem())));
                }
                if (backward) {
                    worst = Math.max(worst, gradients(backend, c, false));
                    worst = Math.max(worst, gradients(backend, c, true));
                }
            }
        }
        return worst;
    }

    /** MHA with tails and batch 2 (shapes that fuse), and GQA, causal, {@code Nq != Nk}, {@code Dv != D} as declared. */
    private List<AttentionCase> cases(Capabilities caps, Precision p) {
        List<AttentionCase> out = new ArrayList<>();
        AttentionProblem mha = AttentionProblem.builder().batch(2).heads(2).length(200).headDim(32).precision(p).build();
        out.add(AttentionCase.random("views " + label(p) + " b2 h2 n200 d32", seed + 44, mha,
                Patterns.parse("bigbird(block=32, window=3, global=1, random=1, seed=3)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL));
        boolean gqa = caps.has(Feature.GROUPED_QUERY);
        boolean causal = caps.has(Feature.CAUSAL);
        AttentionProblem other = AttentionProblem.builder().batch(1).heads(4).kvHeads(gqa ? 2 : 4).queryLength(96)
                .keyLength(caps.has(Feature.CAUSAL_SHIFT) || !causal ? 160 : 96).headDim(16).valueDim(24).causal(causal)
                .precision(p).build();
        out.add(AttentionCase.random("views " + label(p) + (gqa ? " gqa" : "") + (causal ? " causal" : "")
                        + " h4 d16 dv24", seed + 45, other, Patterns.parse("window(block=16, blocks=3)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL));
        out.removeIf(c -> caps.unsupported(c.problem(), caps.has(Feature.LSE), false).isPresent());
        return out;
    }

    // ---------------------------------------------------------------- forward: LSE views

    /** An LSE view and the check that its storage outside the view kept the sentinel. */
    private record View(Tensor tensor, Runnable untouched) {
    }

    private static View lseInsideArray(AttentionProblem p) {
        int n = p.lseSize();
        float[] store = sentinels(LEAD + n + 5);
        Tensor t = Tensor.strided(store, LEAD, new long[] {(long) p.queryLength() * p.queryHeads(), 1, p.queryHeads(), 1},
                p.batch(), p.queryHeads(), p.queryLength(), 1);
        return new View(t, () -> untouched(store, i -> i >= LEAD && i < LEAD + n, "the LSE array outside its view"));
    }

    private static View lseInDirectBuffer(AttentionProblem p) {
        int n = p.lseSize();
        int floats = 3 + 2 * n;
        ByteBuffer buf = ByteBuffer.allocateDirect(floats * 4).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < floats; i++) {
            buf.putInt(i * 4, SENTINEL_BITS);
        }
        Tensor t = Tensor.strided(ElementType.FP32, buf, 3, new long[] {2L * p.queryHeads() * p.queryLength(),
            2L * p.queryLength(), 2, 1}, p.batch(), p.queryHeads(), p.queryLength(), 1);
        return new View(t, () -> {
            for (int i = 0; i < floats; i++) {
                boolean inView = i >= 3 && (i - 3) % 2 == 0 && i < 3 + 2 * n;
                if (!inView && buf.getInt(i * 4) != SENTINEL_BITS) {
                    throw new RuleFailure("the backend wrote float " + i + " of the LSE buffer, outside the view "
                            + "(every other float from 3)", Double.NaN);
                }
            }
        });
    }

    private static View lsePacked(AttentionProblem p) {
        float[] store = sentinels(p.lseSize());
        return new View(Tensor.of(TensorLayout.BHSD, store, p.batch(), p.queryHeads(), p.queryLength(), 1), () -> {
        });
    }

    /** One forward into a BSHD output at an offset and {@code view}; output and LSE against the oracle. */
    private static double forwardLse(SparseAttention backend, AttentionCase c, String how, View view) {
        AttentionProblem p = c.problem();
        String name = "case " + c + " (out BSHD at float " + LEAD + " of a larger array; " + how + ")";
        int count = p.batch() * p.queryHeads() * p.queryLength() * p.valueDim();
        float[] outStore = sentinels(LEAD + count + 3);
        Tensor out = Tensor.strided(outStore, LEAD, new long[] {(long) p.queryLength() * p.queryHeads() * p.valueDim(),
            p.valueDim(), (long) p.queryHeads() * p.valueDim(), 1}, p.batch(), p.queryHeads(), p.queryLength(),
                p.valueDim());
        try (AttentionPlan plan = backend.plan(p, c.layout())) {
            plan.forwardWithLse(c.q(), c.k(), c.v(), out, view.tensor());
        } catch (RuntimeException e) {
            throw new RuleFailure(name + " threw " + e, Double.NaN);
        }
        try {
            untouched(outStore, i -> i >= LEAD && i < LEAD + count, "the output array outside its view");
            view.untouched().run();
        } catch (RuleFailure f) {
            throw new RuleFailure(name + ": " + f.getMessage(), f.worst);
        }
        Comparison.Outcome o = Comparison.compare(p, c.expected(), out, bhsd(p, view.tensor()), Tolerance.of(p.precision()));
        if (!o.ok()) {
            throw new RuleFailure(name + ": " + o.message(), o.worstRatio());
        }
        return o.worstRatio();
    }

    /** The view's values in {@code [B, Hq, Nq]} order, read at indices this class computes itself. */
    private static float[] bhsd(AttentionProblem p, Tensor lse) {
        float[] out = new float[p.lseSize()];
        long[] s = lse.strides();
        for (int b = 0, r = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++, r++) {
                    out[r] = lse.read(lse.start() + b * s[0] + h * s[1] + i * s[2]);
                }
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- backward: gradient views

    /**
     * One backward with the forward's LSE read from a {@code [B, Nq, Hq]}-order view and the
     * gradients written into fused slots (heap, or a direct buffer when {@code direct}) or, for shapes
     * that do not fuse, into a BSHD view at an offset, a transposed view and a direct buffer.
     */
    private static double gradients(SparseAttention backend, AttentionCase c, boolean direct) {
        AttentionProblem p = c.problem();
        if (backend.capabilities().unsupported(p, false, true).isPresent()) {
            return 0;
        }
        GradientRules.Call call = new GradientRules.Call(c);
        View lse = lseInsideArray(p);
        lse.tensor().copyFrom(Tensor.of(TensorLayout.BHSD, call.lse, p.batch(), p.queryHeads(), p.queryLength(), 1));
        boolean fuses = p.queryHeads() == p.kvHeads() && p.queryLength() == p.keyLength() && p.headDim() == p.valueDim();
        Tensor[] grads;
        Runnable untouched;
        String how;
        if (fuses) {
            int b = p.batch();
            int n = p.queryLength();
            int h = p.queryHeads();
            int d = p.headDim();
            int slots = 4;   // q, k, v and one slot nobody writes
            int count = b * n * slots * h * d;
            Tensor storage;
            if (direct) {
                ByteBuffer buf = ByteBuffer.allocateDirect(count * 4).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < count; i++) {
                    buf.putInt(i * 4, SENTINEL_BITS);
                }
                storage = Tensor.of(TensorLayout.BHSD, ElementType.FP32, buf, 0, 1, 1, 1, count);
                untouched = () -> {
                    for (int i = 0; i < count; i++) {
                        if ((i / (h * d)) % slots == 3 && buf.getInt(i * 4) != SENTINEL_BITS) {
                            throw new RuleFailure("the backend wrote float " + i + " of the fused gradient buffer, in "
                                    + "slot 3 that no gradient owns", Double.NaN);
                        }
                    }
                };
            } else {
                float[] store = sentinels(count);
                storage = Tensor.of(TensorLayout.BHSD, store, 1, 1, 1, count);
                untouched = () -> untouched(store, i -> (i / (h * d)) % slots != 3, "slot 3 of the fused gradient array");
            }
            grads = new Tensor[3];
            for (int g = 0; g < 3; g++) {
                grads[g] = Tensor.fusedSlot(storage, g, slots, b, n, h, d);
            }
            how = "dq, dk, dv as slots 0, 1, 2 of a fused [B, N, 4, H, D] " + (direct ? "direct buffer" : "array");
        } else {
            int qCount = p.batch() * p.queryHeads() * p.queryLength() * p.headDim();
            float[] qStore = sentinels(LEAD + qCount + 2);
            Tensor dq = Tensor.strided(qStore, LEAD, new long[] {(long) p.queryLength() * p.queryHeads() * p.headDim(),
                p.headDim(), (long) p.queryHeads() * p.headDim(), 1}, p.batch(), p.queryHeads(), p.queryLength(),
                    p.headDim());
            int nk = p.keyLength();
            Tensor dk = Tensor.strided(new float[p.batch() * p.kvHeads() * p.headDim() * nk], 0,
                    new long[] {(long) p.kvHeads() * p.headDim() * nk, (long) p.headDim() * nk, 1, nk}, p.batch(),
                    p.kvHeads(), nk, p.headDim());
            ByteBuffer vb = ByteBuffer.allocateDirect(p.batch() * p.kvHeads() * nk * p.valueDim() * 4)
                    .order(direct ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
            Tensor dv = Tensor.of(TensorLayout.BSHD, ElementType.FP32, vb, 0, p.batch(), p.kvHeads(), nk, p.valueDim());
            grads = new Tensor[] {dq, dk, dv};
            untouched = () -> untouched(qStore, i -> i >= LEAD && i < LEAD + qCount, "the dq array outside its view");
            how = "dq BSHD at float " + LEAD + " of a larger array, dk as [B, H, D, N], dv BSHD in a "
                    + (direct ? "big" : "little") + "-endian direct buffer";
        }
        String name = "case " + call + " (backward; lse read from a [B, Nq, Hq] view; " + how + ")";
        try (AttentionPlan plan = backend.plan(p, c.layout())) {
            plan.backwardWithLse(call.q, call.k, call.v, call.out, lse.tensor(), call.dOut, grads[0], grads[1], grads[2]);
        } catch (RuntimeException e) {
            throw new RuleFailure(name + " threw " + e, Double.NaN);
        }
        try {
            untouched.run();
        } catch (RuleFailure f) {
            throw new RuleFailure(name + ": " + f.getMessage(), f.worst);
        }
        Comparison.Outcome o = GradientComparison.compare(call.reached(), call.expected(), grads[0], grads[1], grads[2],
                Tolerance.gradient(p.precision()));
        if (!o.ok()) {
            throw new RuleFailure(name + ": " + o.message(), o.worstRatio());
        }
        return o.worstRatio();
    }

    // ---------------------------------------------------------------- helpers

    private static float[] sentinels(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, SENTINEL);
        return a;
    }

    private static void untouched(float[] store, IntPredicate inView, String what) {
        for (int i = 0; i < store.length; i++) {
            if (!inView.test(i) && Float.floatToRawIntBits(store[i]) != SENTINEL_BITS) {
                throw new RuleFailure("the backend wrote element " + i + " of " + what + " (" + store[i] + ")", Double.NaN);
            }
        }
    }

    private static String label(Precision p) {
        return p.name().toLowerCase(java.util.Locale.ROOT);
    }
}
