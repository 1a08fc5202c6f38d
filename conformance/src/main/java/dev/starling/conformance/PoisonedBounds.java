package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.Capabilities;
import dev.starling.api.ElementType;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.conformance.CaseGenerator.CaseKind;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Rule 50 of {@code RULES.md}: {@code q}, {@code k} and {@code v} as views inside storage whose every
 * element outside the view is NaN: margins before the first element and after the last (a key block of
 * rows and more), and gaps between rows and between heads. A backend that reads one element outside
 * its tensors makes NaN where the oracle has a number (even through a zero weight: {@code 0·NaN}); the
 * rule then finds the element by bisection over the poisoned positions and names it.
 */
final class PoisonedBounds {
    /** Floats of NaN between one row's last element and the next row's first. */
    static final int ROW_GAP = 3;
    /** Floats of NaN between one head (BHSD) or sequence position (BSHD) and the next, and between batch entries. */
    static final int HEAD_GAP = 5;
    /** Rows of NaN before and after the view: a whole key block of the largest block size the kit uses, and more. */
    static final int MARGIN_ROWS = 65;

    private final long seed;

    PoisonedBounds(long seed) {
        this.seed = seed;
    }

    /** One tensor's poisoned storage: the view, and every storage index outside it (all NaN). */
    static final class Poisoned {
        final String name;
        final Tensor view;
        final float[] heap;
        final ByteBuffer buffer;
        final int[] outside;

        private Poisoned(String name, Tensor view, float[] heap, ByteBuffer buffer, int[] outside) {
            this.name = name;
            this.view = view;
            this.heap = heap;
            this.buffer = buffer;
            this.outside = outside;
        }

        /**
         * Copies {@code t} into a view with NaN margins and gaps, in the same memory order.
         *
         * @param offHeap whether the storage is a direct buffer (native byte order) instead of a {@code float[]}
         */
        static Poisoned of(String name, Tensor t, boolean offHeap) {
            int b = t.batch();
            int h = t.heads();
            int n = t.length();
            int d = t.dim();
            long[] strides = new long[4];
            strides[3] = 1;
            if (t.layout() == TensorLayout.BSHD) {
                strides[1] = d + ROW_GAP;
                strides[2] = h * strides[1] + HEAD_GAP;
                strides[0] = n * strides[2] + HEAD_GAP;
            } else {
                strides[2] = d + ROW_GAP;
                strides[1] = n * strides[2] + HEAD_GAP;
                strides[0] = h * strides[1] + HEAD_GAP;
            }
            long margin = MARGIN_ROWS * Math.max(strides[1], strides[2]);
            long size = margin + b * strides[0] + margin;
            int total = Math.toIntExact(size);
            float[] heap = offHeap ? null : new float[total];
            ByteBuffer buffer = offHeap ? ByteBuffer.allocateDirect(total * 4).order(ByteOrder.nativeOrder()) : null;
            Tensor view = offHeap ? Tensor.strided(ElementType.FP32, buffer, margin, strides, b, h, n, d)
                    : Tensor.strided(heap, margin, strides, b, h, n, d);
            boolean[] inside = new boolean[total];
            for (int x = 0; x < b; x++) {
                for (int y = 0; y < h; y++) {
                    for (int z = 0; z < n; z++) {
                        for (int w = 0; w < d; w++) {
                            inside[(int) view.index(x, y, z, w)] = true;
                        }
                    }
                }
            }
            int[] outside = new int[total - b * h * n * d];
            int o = 0;
            for (int i = 0; i < total; i++) {
                if (!inside[i]) {
                    outside[o++] = i;
                }
            }
            Poisoned p = new Poisoned(name, view, heap, buffer, outside);
            p.poison(outside, 0, outside.length, Float.NaN);
            for (int x = 0; x < b; x++) {
                for (int y = 0; y < h; y++) {
                    for (int z = 0; z < n; z++) {
                        for (int w = 0; w < d; w++) {
                            p.set((int) view.index(x, y, z, w), t.get(x, y, z, w));
                        }
                    }
                }
            }
            return p;
        }

        void set(int i, float value) {
            if (heap != null) {
                heap[i] = value;
            } else {
                buffer.putFloat(i * 4, value);
            }
        }

        /** Sets the outside positions {@code positions[from, to)} to {@code value}. */
        void poison(int[] positions, int from, int to, float value) {
            for (int x = from; x < to; x++) {
                set(positions[x], value);
            }
        }

        /** @return where storage index {@code i}, outside the view, lies: before it, after it, or after which element */
        String where(int i) {
            long first = view.index(0, 0, 0, 0);
            long last = view.index(view.batch() - 1, view.heads() - 1, view.length() - 1, view.dim() - 1);
            if (i < first) {
                return (first - i) + " floats before its first element";
            }
            if (i > last) {
                return (i - last) + " floats after its last element";
            }
            long best = -1;
            String at = "";
            for (int x = 0; x < view.batch(); x++) {
                for (int y = 0; y < view.heads(); y++) {
                    for (int z = 0; z < view.length(); z++) {
                        long e = view.index(x, y, z, view.dim() - 1);
                        if (e < i && e > best) {
                            best = e;
                            at = "(b=" + x + ", h=" + y + ", n=" + z + ", d=" + (view.dim() - 1) + ")";
                        }
                    }
                }
            }
            return (i - best) + " floats after element " + at + ", in the gap between rows or heads";
        }
    }

    /** Cases of rule 50 in one precision: tails down to one key, GQA, lengths, causal, BSHD, as declared. */
    private List<AttentionCase> cases(Capabilities caps, Precision p) {
        List<AttentionCase> cases = new ArrayList<>();
        for (CaseKind kind : new CaseKind[] {CaseKind.TAILS, CaseKind.GROUPED_QUERY, CaseKind.LENGTHS, CaseKind.CAUSAL,
            CaseKind.TENSOR_LAYOUTS}) {
            for (AttentionCase c : CaseGenerator.cases(kind, seed + 50, p)) {
                if (caps.unsupported(c.problem(), caps.has(Feature.LSE)).isEmpty()) {
                    cases.add(c);
                }
            }
        }
        return cases;
    }

    /**
     * Rule 50: every case with {@code q}, {@code k} and {@code v} in poisoned storage (on the heap, and in
     * direct buffers when {@code OFF_HEAP_TENSORS} is declared), output and LSE against the oracle.
     */
    double check(SparseAttention backend) {
        Capabilities caps = backend.capabilities();
        boolean withLse = caps.has(Feature.LSE);
        double worst = 0;
        for (Precision p : caps.precisions()) {
            for (AttentionCase c : cases(caps, p)) {
                DenseOracle.Result expected = c.expected();
                for (boolean offHeap : caps.has(Feature.OFF_HEAP_TENSORS) ? new boolean[] {false, true}
                        : new boolean[] {false}) {
                    Poisoned[] inputs = {Poisoned.of("q", c.q(), offHeap), Poisoned.of("k", c.k(), offHeap),
                        Poisoned.of("v", c.v(), offHeap)};
                    String what = "case " + c + " with q, k and v inside " + (offHeap ? "direct buffers" : "float arrays")
                            + " whose every element outside the views is NaN";
                    Comparison.Outcome o = run(backend, c, inputs, expected, withLse, what);
                    if (!o.ok()) {
                        throw new RuleFailure(what + ": " + o.message() + "; " + culprit(backend, c, inputs, expected,
                                withLse, what), o.worstRatio());
                    }
                    worst = Math.max(worst, o.worstRatio());
                }
            }
        }
        return worst;
    }

    private static Comparison.Outcome run(SparseAttention backend, AttentionCase c, Poisoned[] inputs,
                                          DenseOracle.Result expected, boolean withLse, String what) {
        Tensor out = c.newOutput();
        float[] lse = withLse ? c.newLse() : null;
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.forward(inputs[0].view, inputs[1].view, inputs[2].view, out, lse);
        } catch (RuntimeException e) {
            throw new RuleFailure(what + " threw " + e, Double.NaN);
        }
        return Comparison.compare(c.problem(), expected, out, lse, Tolerance.of(c.problem().precision()));
    }

    /**
     * Finds one poisoned element whose NaN alone makes the case fail: the poisoned positions of all three
     * tensors halved while the half kept NaN (the rest set to 0) still fails.
     */
    private static String culprit(SparseAttention backend, AttentionCase c, Poisoned[] inputs, DenseOracle.Result expected,
                                  boolean withLse, String what) {
        List<int[]> candidates = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
            for (int i : inputs[t].outside) {
                candidates.add(new int[] {t, i});
            }
        }
        if (failsWithOnlyAndRestore(backend, c, inputs, List.of(), expected, withLse, what)) {
            return "it is wrong with every element outside the views 0 too, so it is not (only) an out-of-bounds read: "
                    + "see the rules of its case first";
        }
        while (candidates.size() > 1) {
            List<int[]> half = candidates.subList(0, candidates.size() / 2);
            List<int[]> rest = candidates.subList(candidates.size() / 2, candidates.size());
            if (failsWithOnly(backend, c, inputs, half, expected, withLse, what)) {
                candidates = new ArrayList<>(half);
            } else if (failsWithOnly(backend, c, inputs, rest, expected, withLse, what)) {
                candidates = new ArrayList<>(rest);
            } else {
                restore(inputs);
                return "no single poisoned element makes the difference (the output depends on several, or not "
                        + "deterministically on them)";
            }
        }
        restore(inputs);
        if (candidates.isEmpty() || !failsWithOnlyAndRestore(backend, c, inputs, candidates, expected, withLse, what)) {
            return "no single poisoned element makes the difference";
        }
        Poisoned p = inputs[candidates.get(0)[0]];
        int i = candidates.get(0)[1];
        return "the backend read " + p.name + "'s storage element " + i + ", outside the view: " + p.where(i)
                + " (with only that element NaN the output is still wrong)";
    }

    private static boolean failsWithOnlyAndRestore(SparseAttention backend, AttentionCase c, Poisoned[] inputs,
                                                   List<int[]> poisoned, DenseOracle.Result expected, boolean withLse,
                                                   String what) {
        boolean fails = failsWithOnly(backend, c, inputs, poisoned, expected, withLse, what);
        restore(inputs);
        return fails;
    }

    private static boolean failsWithOnly(SparseAttention backend, AttentionCase c, Poisoned[] inputs, List<int[]> poisoned,
                                         DenseOracle.Result expected, boolean withLse, String what) {
        for (Poisoned p : inputs) {
            p.poison(p.outside, 0, p.outside.length, 0f);
        }
        for (int[] at : poisoned) {
            inputs[at[0]].set(at[1], Float.NaN);
        }
        return !run(backend, c, inputs, expected, withLse, what).ok();
    }

    /** Every outside position NaN again. */
    private static void restore(Poisoned[] inputs) {
        for (Poisoned p : inputs) {
            p.poison(p.outside, 0, p.outside.length, Float.NaN);
        }
    }
}
