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

/**
 * Rules 38 to 40: tensors as users hold them. Every backend must give the oracle's answer for
 * strided views (q, k, v of one fused projection, a GQA-packed projection, a transposed key
 * tensor, an output interleaved with other data), off-heap buffers (at an offset, in either byte
 * order) and bf16 / fp16 tensors (rounded outputs within half a unit in the last place more than
 * the precision's tolerance). A backend that declares none of the tensor features gets converted
 * views from the api and passes by construction; one that declares a feature reads the views
 * itself, and these rules are where a wrong stride, offset or rounding shows.
 *
 * <p>Every view's values are written at indices this class computes itself (not through the
 * view), and the expected output is the oracle over packed float32 copies of the same values, so
 * a mistake in {@code Tensor}'s own index arithmetic fails here too. Storage around an output
 * view is filled with a NaN sentinel and must keep it: a backend that writes outside its view fails.
 */
final class TensorViewRules {
    private static final int SENTINEL_BITS = 0x7fc5a5a5;
    private static final float SENTINEL = Float.intBitsToFloat(SENTINEL_BITS);
    private static final short SENTINEL_HALF = (short) 0x7e5a;

    private final long seed;

    TensorViewRules(long seed) {
        this.seed = seed;
    }

    /** One call's tensors, the oracle's expectation, and the output storage's sentinel check. */
    private record Views(String name, AttentionCase c, Tensor q, Tensor k, Tensor v, Tensor out, Runnable untouched) {
    }

    /** Rule 38. */
    double stridedTensors(SparseAttention backend) {
        double worst = 0;
        for (Precision p : backend.capabilities().precisions()) {
            for (AttentionCase c : problems(backend.capabilities(), p, "strided")) {
                worst = Math.max(worst, check(backend, fusedQkv(c)));
                worst = Math.max(worst, check(backend, packedHeads(c)));
                worst = Math.max(worst, check(backend, transposedKeysInsideLargerArrays(c)));
            }
        }
        return worst;
    }

    /** Rule 39. */
    double offHeapTensors(SparseAttention backend) {
        double worst = 0;
        for (Precision p : backend.capabilities().precisions()) {
            for (AttentionCase c : problems(backend.capabilities(), p, "off-heap")) {
                worst = Math.max(worst, check(backend, offHeap(c, ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN)));
                worst = Math.max(worst, check(backend, offHeapFused(c)));
            }
        }
        return worst;
    }

    /** Rule 40. */
    double halfPrecisionTensors(SparseAttention backend) {
        double worst = 0;
        for (Precision p : backend.capabilities().precisions()) {
            for (AttentionCase source : problems(backend.capabilities(), p, "16-bit")) {
                for (ElementType type : new ElementType[] {ElementType.BF16, ElementType.FP16}) {
                    worst = Math.max(worst, half(backend, source, type, false));
                    worst = Math.max(worst, half(backend, source, type, true));
                }
            }
        }
        return worst;
    }

    /** Two problems per precision: MHA with a tail block, and (when declared) GQA, causal, with LSE. */
    private List<AttentionCase> problems(Capabilities caps, Precision p, String what) {
        List<AttentionCase> cases = new ArrayList<>();
        AttentionProblem mha = AttentionProblem.builder().batch(2).heads(2).length(200).headDim(32).precision(p).build();
        cases.add(AttentionCase.random(what + " " + label(p) + " b2 h2 n200 d32", seed + 38, mha,
                Patterns.parse("bigbird(block=32, window=3, global=1, random=1, seed=3)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL));
        boolean gqa = caps.has(Feature.GROUPED_QUERY);
        boolean causal = caps.has(Feature.CAUSAL);
        AttentionProblem other = AttentionProblem.builder().batch(1).heads(4).kvHeads(gqa ? 2 : 4).queryLength(96)
                .keyLength(caps.has(Feature.CAUSAL_SHIFT) || !causal ? 160 : 96).headDim(16).causal(causal).precision(p)
                .build();
        cases.add(AttentionCase.random(what + " " + label(p) + (gqa ? " gqa" : "") + (causal ? " causal" : "")
                        + " h4 d16", seed + 39, other, Patterns.parse("window(block=16, blocks=3)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL));
        return cases;
    }

    // ---------------------------------------------------------------- rule 38 cases

    /** q, k, v as slots 0, 1, 2 of {@code [B, N, 3, H, D]}; out as slot 1 of {@code [B, N, 2, H, Dv]}. */
    private static Views fusedQkv(AttentionCase c) {
        AttentionProblem p = c.problem();
        if (p.queryHeads() != p.kvHeads() || p.queryLength() != p.keyLength() || p.headDim() != p.valueDim()) {
            return packedHeads(c);
        }
        int b = p.batch();
        int n = p.queryLength();
        int h = p.queryHeads();
        int d = p.headDim();
        float[] fused = new float[b * n * 3 * h * d];
        Tensor[] src = {c.q(), c.k(), c.v()};
        fillFused(src, b, n, h, d, (i, value) -> fused[i] = value);
        Tensor[] qkv = Tensor.fusedQkv(fused, b, n, h, d);
        float[] outStore = sentinels(b * n * 2 * h * d);
        Tensor out = Tensor.fusedSlot(Tensor.of(TensorLayout.BHSD, outStore, 1, 1, 1, outStore.length), 1, 2, b, n, h, d);
        return new Views("fused [B, N, 3, H, D] q, k, v; out slot 1 of [B, N, 2, H, Dv]", c, qkv[0], qkv[1], qkv[2], out,
                () -> untouched(outStore, i -> (i / (h * d)) % 2 == 1, "out slot 0 of the fused output"));
    }

    /** One projection {@code [B, N, Hq + 2·Hkv, D]}: q heads first, then k heads, then v heads (GQA packing). */
    private static Views packedHeads(AttentionCase c) {
        AttentionProblem p = c.problem();
        if (p.queryLength() != p.keyLength() || p.headDim() != p.valueDim()) {
            return transposedKeysInsideLargerArrays(c);
        }
        int b = p.batch();
        int n = p.queryLength();
        int hq = p.queryHeads();
        int hkv = p.kvHeads();
        int d = p.headDim();
        int all = hq + 2 * hkv;
        float[] store = new float[b * n * all * d];
        int[] first = {0, hq, hq + hkv};
        Tensor[] src = {c.q(), c.k(), c.v()};
        Tensor[] views = new Tensor[3];
        for (int t = 0; t < 3; t++) {
            for (int bb = 0; bb < b; bb++) {
                for (int nn = 0; nn < n; nn++) {
                    for (int hh = 0; hh < src[t].heads(); hh++) {
                        for (int dd = 0; dd < d; dd++) {
                            store[((bb * n + nn) * all + first[t] + hh) * d + dd] = src[t].get(bb, hh, nn, dd);
                        }
                    }
                }
            }
            views[t] = Tensor.strided(store, (long) first[t] * d, new long[] {(long) n * all * d, d, (long) all * d, 1}, b,
                    src[t].heads(), n, d);
        }
        int hOut = hq;
        float[] outStore = sentinels(b * n * (hq + 1) * d);
        // out: heads 1 .. Hq of a [B, N, Hq + 1, Dv] array, head slot 0 left to someone else.
        Tensor out = Tensor.strided(outStore, d, new long[] {(long) n * (hq + 1) * d, d, (long) (hq + 1) * d, 1}, b, hOut,
                n, d);
        return new Views("GQA-packed [B, N, Hq + 2 Hkv, D] q, k, v; out heads 1.. of [B, N, Hq + 1, Dv]", c, views[0],
                views[1], views[2], out, () -> untouched(outStore, i -> (i / d) % (hq + 1) != 0, "head slot 0 of the output"));
    }

    /** q inside a larger array at an offset, k stored {@code [B, H, D, N]} (columns, not rows, contiguous), v packed. */
    private static Views transposedKeysInsideLargerArrays(AttentionCase c) {
        AttentionProblem p = c.problem();
        int b = p.batch();
        int nq = p.queryLength();
        int nk = p.keyLength();
        int hq = p.queryHeads();
        int hkv = p.kvHeads();
        int d = p.headDim();
        int dv = p.valueDim();
        int lead = 37;
        float[] qStore = sentinels(lead + b * hq * nq * d + 11);
        for (int bb = 0; bb < b; bb++) {
            for (int hh = 0; hh < hq; hh++) {
                for (int n = 0; n < nq; n++) {
                    for (int dd = 0; dd < d; dd++) {
                        qStore[lead + ((bb * hq + hh) * nq + n) * d + dd] = c.q().get(bb, hh, n, dd);
                    }
                }
            }
        }
        Tensor q = Tensor.strided(qStore, lead, new long[] {(long) hq * nq * d, (long) nq * d, d, 1}, b, hq, nq, d);
        float[] kStore = new float[b * hkv * d * nk];
        for (int bb = 0; bb < b; bb++) {
            for (int hh = 0; hh < hkv; hh++) {
                for (int n = 0; n < nk; n++) {
                    for (int dd = 0; dd < d; dd++) {
                        kStore[((bb * hkv + hh) * d + dd) * nk + n] = c.k().get(bb, hh, n, dd);
                    }
                }
            }
        }
        Tensor k = Tensor.strided(kStore, 0, new long[] {(long) hkv * d * nk, (long) d * nk, 1, nk}, b, hkv, nk, d);
        float[] outStore = sentinels(lead + b * nq * hq * dv + 5);
        Tensor out = Tensor.strided(outStore, lead, new long[] {(long) nq * hq * dv, dv, (long) hq * dv, 1}, b, hq, nq, dv);
        int end = lead + b * nq * hq * dv;
        return new Views("q at offset " + lead + " of a larger array, k as [B, H, D, N], out BSHD at offset " + lead, c, q,
                k, c.v(), out, () -> untouched(outStore, i -> i >= lead && i < end, "the output array outside its view"));
    }

    // ---------------------------------------------------------------- rule 39 cases

    /** q, out in {@code qOrder} direct buffers at offsets (BSHD); k, v in {@code kOrder} buffers (BHSD). */
    private static Views offHeap(AttentionCase c, ByteOrder qOrder, ByteOrder kOrder) {
        AttentionProblem p = c.problem();
        int lead = 5;
        ByteBuffer qb = direct(lead, c.q(), TensorLayout.BSHD, qOrder);
        ByteBuffer kb = direct(3, c.k(), TensorLayout.BHSD, kOrder);
        ByteBuffer vb = direct(0, c.v(), TensorLayout.BHSD, qOrder);
        int outCount = p.batch() * p.queryHeads() * p.queryLength() * p.valueDim();
        ByteBuffer ob = ByteBuffer.allocateDirect((lead + outCount + 3) * 4).order(qOrder);
        for (int i = 0; i < lead + outCount + 3; i++) {
            ob.putInt(i * 4, SENTINEL_BITS);
        }
        Tensor q = Tensor.of(TensorLayout.BSHD, ElementType.FP32, qb, lead, p.batch(), p.queryHeads(), p.queryLength(),
                p.headDim());
        Tensor k = Tensor.of(TensorLayout.BHSD, ElementType.FP32, kb, 3, p.batch(), p.kvHeads(), p.keyLength(), p.headDim());
        Tensor v = Tensor.of(TensorLayout.BHSD, ElementType.FP32, vb, 0, p.batch(), p.kvHeads(), p.keyLength(),
                p.valueDim());
        Tensor out = Tensor.of(TensorLayout.BSHD, ElementType.FP32, ob, lead, p.batch(), p.queryHeads(), p.queryLength(),
                p.valueDim());
        return new Views("direct buffers: q and out BSHD " + qOrder + " at element " + lead + ", k BHSD " + kOrder
                + " at element 3, v BHSD at 0", c, q, k, v, out, () -> {
                    for (int i = 0; i < lead + outCount + 3; i++) {
                        if ((i < lead || i >= lead + outCount) && ob.getInt(i * 4) != SENTINEL_BITS) {
                            throw new RuleFailure("the backend wrote float " + i + " of the output buffer, outside the "
                                    + "view (elements " + lead + " to " + (lead + outCount - 1) + ")", Double.NaN);
                        }
                    }
                });
    }

    /** q, k, v as slots of one fused projection in a little-endian direct buffer (falls back to {@link #offHeap}). */
    private static Views offHeapFused(AttentionCase c) {
        AttentionProblem p = c.problem();
        if (p.queryHeads() != p.kvHeads() || p.queryLength() != p.keyLength() || p.headDim() != p.valueDim()) {
            return offHeap(c, ByteOrder.BIG_ENDIAN, ByteOrder.LITTLE_ENDIAN);
        }
        int b = p.batch();
        int n = p.queryLength();
        int h = p.queryHeads();
        int d = p.headDim();
        ByteBuffer fused = ByteBuffer.allocateDirect(b * n * 3 * h * d * 4).order(ByteOrder.LITTLE_ENDIAN);
        Tensor[] src = {c.q(), c.k(), c.v()};
        fillFused(src, b, n, h, d, (i, value) -> fused.putFloat(i * 4, value));
        Tensor[] qkv = Tensor.fusedQkv(ElementType.FP32, fused, b, n, h, d);
        Tensor out = Tensor.of(TensorLayout.BHSD, ElementType.FP32,
                ByteBuffer.allocateDirect(b * h * n * d * 4).order(ByteOrder.nativeOrder()), 0, b, h, n, d);
        return new Views("a fused [B, N, 3, H, D] projection in a direct buffer", c, qkv[0], qkv[1], qkv[2], out, () -> {
        });
    }

    // ---------------------------------------------------------------- rule 40 cases

    /**
     * q, k, v rounded to {@code type} (q and v on the heap, k in a direct buffer; or all three in
     * one fused short[] when {@code fused}); out of {@code type} too (heap, or a direct buffer when
     * {@code fused}). Expected: the oracle over the 16-bit values widened; allowed: the precision's
     * tolerance plus half a unit in the last place of {@code type} (the output's own rounding).
     */
    private double half(SparseAttention backend, AttentionCase source, ElementType type, boolean fused) {
        AttentionProblem p = source.problem();
        Tensor q16 = rounded(source.q(), type, false);
        Tensor k16 = rounded(source.k(), type, !fused);
        Tensor v16 = rounded(source.v(), type, false);
        Tensor out;
        String how;
        if (fused && p.queryHeads() == p.kvHeads() && p.queryLength() == p.keyLength() && p.headDim() == p.valueDim()) {
            int b = p.batch();
            int n = p.queryLength();
            int h = p.queryHeads();
            int d = p.headDim();
            short[] store = new short[b * n * 3 * h * d];
            Tensor[] src = {q16, k16, v16};
            fillFused(src, b, n, h, d, (i, value) -> store[i] = type.round(value));
            Tensor[] qkv = Tensor.fusedQkv(type, store, b, n, h, d);
            q16 = qkv[0];
            k16 = qkv[1];
            v16 = qkv[2];
            how = "fused [B, N, 3, H, D] short[]";
        } else {
            how = "q, v short[]; k " + (fused ? "short[]" : "direct buffer");
        }
        if (fused) {
            ByteBuffer ob = ByteBuffer.allocateDirect(p.batch() * p.queryHeads() * p.queryLength() * p.valueDim() * 2)
                    .order(ByteOrder.LITTLE_ENDIAN);
            out = Tensor.of(TensorLayout.BSHD, type, ob, 0, p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
            how += ", out " + type.label() + " BSHD direct buffer";
        } else {
            short[] os = new short[p.batch() * p.queryHeads() * p.queryLength() * p.valueDim()];
            java.util.Arrays.fill(os, SENTINEL_HALF);
            out = Tensor.of(TensorLayout.BHSD, type, os, p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
            how += ", out " + type.label() + " short[]";
        }
        AttentionCase widened = new AttentionCase(source.name() + " " + type.label(), source.seed(), p, source.pattern(),
                source.layout(), q16.toFloat32(), k16.toFloat32(), v16.toFloat32());
        String name = "case " + widened + " (" + type.label() + " tensors: " + how + ")";
        call(backend, name, widened, q16, k16, v16, out);
        return compareHalf(name, p, widened.expected(), out, type);
    }

    private static double compareHalf(String name, AttentionProblem p, DenseOracle.Result expected, Tensor out,
                                      ElementType type) {
        Tolerance tol = Tolerance.of(p.precision());
        double worst = 0;
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                    for (int d = 0; d < p.valueDim(); d++) {
                        double ref = expected.out()[row * p.valueDim() + d];
                        double got = out.get(b, h, i, d);
                        double allowed = tol.atol() + tol.rtol() * Math.abs(ref) + 0.5 * Math.max(ulp(type, ref),
                                ulp(type, got));
                        double ratio = Math.abs(got - ref) / allowed;
                        if (!(ratio <= 1)) {
                            throw new RuleFailure(name + ": output at (b=" + b + ", h=" + h + ", i=" + i + ", d=" + d + "): "
                                    + got + " vs expected " + ref + " (allowed " + allowed + ": the " + label(p.precision())
                                    + " tolerance plus half a " + type.label() + " ulp; nearest " + type.label() + " is "
                                    + type.quantize((float) ref) + ")", ratio);
                        }
                        worst = Math.max(worst, ratio);
                    }
                }
            }
        }
        return worst;
    }

    private static String label(Precision p) {
        return p.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The spacing of {@code type}'s values at {@code |x|}. */
    static double ulp(ElementType type, double x) {
        int e = Math.getExponent((float) Math.abs(x));
        return switch (type) {
            case BF16 -> Math.scalb(1.0, Math.max(e, -126) - 7);
            case FP16 -> Math.scalb(1.0, Math.max(e, -14) - 10);
            case FP32 -> Math.ulp((float) x);
        };
    }

    /** {@code t}'s values rounded to {@code type}, packed in t's layout, on the heap or in a direct buffer. */
    private static Tensor rounded(Tensor t, ElementType type, boolean direct) {
        TensorLayout l = t.layout();
        if (!direct) {
            Tensor r = Tensor.zeros(type, l, t.batch(), t.heads(), t.length(), t.dim());
            r.copyFrom(t);
            return r;
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(t.batch() * t.heads() * t.length() * t.dim() * 2)
                .order(ByteOrder.LITTLE_ENDIAN);
        Tensor r = Tensor.of(l, type, buf, 0, t.batch(), t.heads(), t.length(), t.dim());
        r.copyFrom(t);
        return r;
    }

    // ---------------------------------------------------------------- running and checking

    private static double check(SparseAttention backend, Views views) {
        AttentionCase c = views.c();
        String name = "case " + c + " (" + views.name() + ")";
        boolean lse = backend.capabilities().has(Feature.LSE);
        float[] l = lse ? c.newLse() : null;
        call(backend, name, c, views.q(), views.k(), views.v(), views.out(), l);
        try {
            views.untouched().run();
        } catch (RuleFailure f) {
            throw new RuleFailure(name + ": " + f.getMessage(), f.worst);
        }
        Comparison.Outcome o = Comparison.compare(c.problem(), c.expected(), views.out(), l,
                Tolerance.of(c.problem().precision()));
        if (!o.ok()) {
            throw new RuleFailure(name + ": " + o.message(), o.worstRatio());
        }
        return o.worstRatio();
    }

    private static void call(SparseAttention backend, String name, AttentionCase c, Tensor q, Tensor k, Tensor v,
                             Tensor out) {
        call(backend, name, c, q, k, v, out, null);
    }

    private static void call(SparseAttention backend, String name, AttentionCase c, Tensor q, Tensor k, Tensor v,
                             Tensor out, float[] lse) {
        try (AttentionPlan plan = backend.plan(c.problem(), c.layout())) {
            plan.forward(q, k, v, out, lse);
        } catch (RuntimeException e) {
            throw new RuleFailure(name + " threw " + e, Double.NaN);
        }
    }

    private static ByteBuffer direct(int lead, Tensor t, TensorLayout layout, ByteOrder order) {
        int count = t.batch() * t.heads() * t.length() * t.dim();
        ByteBuffer buf = ByteBuffer.allocateDirect((lead + count) * 4).order(order);
        for (int i = 0; i < lead; i++) {
            buf.putInt(i * 4, SENTINEL_BITS);
        }
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int n = 0; n < t.length(); n++) {
                    long row = layout.rowOffset(b, h, n, t.heads(), t.length(), t.dim());
                    for (int d = 0; d < t.dim(); d++) {
                        buf.putFloat((int) (lead + row + d) * 4, t.get(b, h, n, d));
                    }
                }
            }
        }
        return buf;
    }

    /** Receives one element of a fused projection: its index and value. */
    private interface FusedWriter {
        void put(int index, float value);
    }

    /** Writes {@code src[slot]} element {@code (b, h, n, d)} at index {@code (((b·N + n)·3 + slot)·H + h)·D + d}. */
    private static void fillFused(Tensor[] src, int b, int n, int h, int d, FusedWriter writer) {
        for (int slot = 0; slot < 3; slot++) {
            for (int bb = 0; bb < b; bb++) {
                for (int nn = 0; nn < n; nn++) {
                    for (int hh = 0; hh < h; hh++) {
                        for (int dd = 0; dd < d; dd++) {
                            writer.put((((bb * n + nn) * 3 + slot) * h + hh) * d + dd, src[slot].get(bb, hh, nn, dd));
                        }
                    }
                }
            }
        }
    }

    private static float[] sentinels(int count) {
        float[] a = new float[count];
        java.util.Arrays.fill(a, SENTINEL);
        return a;
    }

    private static void untouched(float[] store, java.util.function.IntPredicate inView, String where) {
        for (int i = 0; i < store.length; i++) {
            if (!inView.test(i) && Float.floatToRawIntBits(store[i]) != SENTINEL_BITS) {
                throw new RuleFailure("the backend wrote element " + i + " of " + where + ", outside the output view",
                        Double.NaN);
            }
        }
    }
}
