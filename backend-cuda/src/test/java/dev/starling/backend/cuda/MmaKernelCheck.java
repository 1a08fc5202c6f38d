package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.TokenMask;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * Checks the {@code mma.sync} kernels on a GPU against the float64 oracle, at the head dims they
 * are specialised for (the conformance kit's cases are mostly at head dim 16, so under
 * {@code -Dstarling.cuda.kernels=mma} they run the WMMA fallback; this program covers every
 * feature at D = 64 and 128): per precision (tf32, bf16, fp16) and head dim, the kit's features
 * (tails, Nq ≠ Nk, block sizes 32/64/128, causal with Nq ≶ Nk, GQA/MQA, key and query lengths with
 * zeros, BSHD, huge logits of both signs, a custom scale, LSE) whole and with every row split
 * (1 and 2 key blocks a unit, so the merge kernel runs); determinism (and the same output without
 * LSE); NaN/±∞ in q, k, v compared element by element; {@link CudaPlan#forward16} against the
 * float32 device path (bit for bit: the same kernel on the same 16-bit values); misaligned device
 * pointers (the WMMA fallback).
 *
 * <p>Run by {@code backend-cuda/gpu/check.sh} ({@code java ... dev.starling.backend.cuda.MmaKernelCheck});
 * exit status 0 when everything passed, 1 when something failed, 4 without a usable GPU.
 * {@code MmaKernelCheckTest} runs it from the build on a GPU machine.
 */
public final class MmaKernelCheck {
    private static final long SEED = 16;
    private static final PatternSpec BIGBIRD = Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=5)");
    private static final int[] SPLITS = {SplitRows.OFF, 2, 1};
    private static final float[] NON_FINITE = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
    private static final Precision[] PRECISIONS = {Precision.TF32, Precision.BF16, Precision.FP16};

    private final PrintStream log;
    private final CudaBackend backend = new CudaBackend();
    private int passed;
    private final List<String> failures = new ArrayList<>();

    private MmaKernelCheck(PrintStream log) {
        this.log = log;
    }

    /**
     * @param args {@code [--quick]}: fewer non-finite injections
     */
    public static void main(String[] args) {
        boolean quick = args.length > 0 && args[0].equals("--quick");
        System.exit(run(System.out, quick));
    }

    /**
     * Runs every check.
     *
     * @param log where the results go
     * @param quick fewer non-finite injections
     * @return 0 when everything passed, 1 when something failed, 4 without a usable GPU
     */
    public static int run(PrintStream log, boolean quick) {
        Availability a = new CudaBackend().availability();
        log.println("mma kernel check: " + a);
        if (!a.isAvailable()) {
            return 4;
        }
        MmaKernelCheck c = new MmaKernelCheck(log);
        long t0 = System.nanoTime();
        for (int d : new int[] {64, 128}) {
            List<AttentionCase> cases = cases(d);
            Map<AttentionCase, DenseOracle.Result> oracle = new LinkedHashMap<>();
            for (AttentionCase ac : cases) {
                oracle.put(ac, ac.expected());
            }
            for (Precision p : PRECISIONS) {
                for (AttentionCase ac : cases) {
                    c.checkCase(ac, oracle.get(ac), p);
                }
            }
            c.checkNonFinite(cases, quick);
            for (Precision p : PRECISIONS) {
                if (p != Precision.TF32) {
                    c.checkForward16(cases.get(0), oracle.get(cases.get(0)), p);
                }
                c.checkMisaligned(cases.get(0), oracle.get(cases.get(0)), p);
            }
        }
        log.printf(Locale.ROOT, "mma kernel check: %d passed, %d failed (%.1f s)%n", c.passed, c.failures.size(),
                (System.nanoTime() - t0) / 1e9);
        for (String f : c.failures) {
            log.println("  FAILED " + f);
        }
        return c.failures.isEmpty() ? 0 : 1;
    }

    /** The features of the conformance kit at head dim {@code d} (= Dv), float32 precision (set per run). */
    static List<AttentionCase> cases(int d) {
        Random seeds = new Random(SEED * 31 + d);
        AttentionProblem base = AttentionProblem.builder().heads(2).length(320).headDim(d).build();
        List<AttentionCase> c = new ArrayList<>();
        c.add(normal("bigbird N 320", seeds, base, BIGBIRD, TensorLayout.BHSD));
        c.add(normal("tail N 300", seeds, base.toBuilder().length(300).build(), BIGBIRD, TensorLayout.BHSD));
        c.add(normal("nq 200 nk 330", seeds, base.toBuilder().queryLength(200).keyLength(330).build(), BIGBIRD,
                TensorLayout.BHSD));
        c.add(normal("block 32", seeds, base.toBuilder().length(290).build(),
                Patterns.parse("bigbird(block=32, window=3, global=2, random=2, seed=1)"), TensorLayout.BHSD));
        c.add(normal("block 128", seeds, base.toBuilder().length(700).build(),
                Patterns.parse("bigbird(block=128, window=3, global=1, random=1, seed=2)"), TensorLayout.BHSD));
        c.add(normal("causal N 300", seeds, base.toBuilder().length(300).causal(true).build(), BIGBIRD, TensorLayout.BHSD));
        c.add(normal("causal nq 130 nk 300", seeds, base.toBuilder().queryLength(130).keyLength(300).causal(true).build(),
                BIGBIRD, TensorLayout.BHSD));
        c.add(normal("causal nq 300 nk 130 (rows with no key)", seeds,
                base.toBuilder().queryLength(300).keyLength(130).causal(true).build(), BIGBIRD, TensorLayout.BHSD));
        c.add(normal("gqa hq 4 hkv 2", seeds, base.toBuilder().heads(4).kvHeads(2).length(300).build(), BIGBIRD,
                TensorLayout.BHSD));
        c.add(normal("mqa hq 4 hkv 1 bshd", seeds, base.toBuilder().heads(4).kvHeads(1).length(260).build(), BIGBIRD,
                TensorLayout.BSHD));
        c.add(normal("key and query lengths with zeros", seeds,
                base.toBuilder().batch(3).length(300).keyLengths(300, 77, 0).queryLengths(250, 0, 300).build(), BIGBIRD,
                TensorLayout.BHSD));
        c.add(normal("causal, key lengths, bshd batch 2", seeds,
                base.toBuilder().batch(2).length(300).causal(true).keyLengths(200, 300).build(), BIGBIRD, TensorLayout.BSHD));
        c.add(normal("custom scale 0.7", seeds, base.toBuilder().scale(0.7f).build(), BIGBIRD, TensorLayout.BHSD));
        c.add(AttentionCase.random("huge logits", seeds.nextLong(), base.toBuilder().scale(16f).build(), BIGBIRD,
                TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
        c.add(AttentionCase.random("huge negative logits", seeds.nextLong(), base.toBuilder().length(200).scale(-16f).build(),
                Patterns.parse("dense(block=64)"), TensorLayout.BHSD, AttentionCase.Values.SMALL_INTEGERS));
        return c;
    }

    private static AttentionCase normal(String name, Random seeds, AttentionProblem p, PatternSpec pattern,
                                        TensorLayout layout) {
        return AttentionCase.random(name, seeds.nextLong(), p, pattern, layout, AttentionCase.Values.NORMAL);
    }

    private CudaPlan plan(AttentionProblem p, BlockLayout layout, int split) {
        return new CudaPlan(backend, backend.capabilities(dev.starling.api.PlanOptions.none().with(CudaBackend.KERNELS, KernelFamily.MMA)), CudaDevice.get(), p, layout, split, KernelFamily.MMA, 0);
    }

    private static String name(Precision p, AttentionProblem problem) {
        return p.name().toLowerCase(Locale.ROOT) + " D=" + problem.headDim();
    }

    private void report(boolean ok, String what, String detail) {
        if (ok) {
            passed++;
        } else {
            failures.add(what + ": " + detail);
        }
        log.println("  " + (ok ? "pass" : "FAIL") + "  " + what + "  " + detail);
    }

    /** The case whole and split, against the oracle; determinism and the output without LSE. */
    private void checkCase(AttentionCase ac, DenseOracle.Result expected, Precision precision) {
        AttentionProblem p = ac.problem().toBuilder().precision(precision).build();
        for (int split : SPLITS) {
            String what = name(precision, p) + " " + ac.name() + (split == SplitRows.OFF ? "" : " [split " + split + "]");
            try (CudaPlan plan = plan(p, ac.layout(), split)) {
                if (plan.geometry().mma() == null) {
                    report(false, what, "did not select an mma kernel: " + plan.geometry().describe());
                    continue;
                }
                Tensor out = ac.newOutput();
                float[] lse = ac.newLse();
                plan.forward(ac.q(), ac.k(), ac.v(), out, lse);
                Comparison.Outcome o = Comparison.compare(p, expected, out, lse, Tolerance.of(precision));
                String detail = String.format(Locale.ROOT, "worst/tol %.3g, rel norm %.2e  %s", o.worstRatio(),
                        o.relativeNorm(), plan.geometry().describe());
                report(o.ok(), what, o.ok() ? detail : o.message() + "  " + detail);
                if (split == SplitRows.OFF) {
                    Tensor again = ac.newOutput();
                    plan.forward(ac.q(), ac.k(), ac.v(), again, null);
                    report(sameBits(out.data(), again.data()), what + " (again, without LSE)",
                            "bit-identical output");
                }
            } catch (RuntimeException e) {
                report(false, what, "threw " + e);
            }
        }
    }

    private static boolean sameBits(float[] a, float[] b) {
        if (a.length != b.length) {
            return false;
        }
        for (int i = 0; i < a.length; i++) {
            if (Float.floatToIntBits(a[i]) != Float.floatToIntBits(b[i])) {
                return false;
            }
        }
        return true;
    }

    /**
     * NaN, +∞ and −∞ in one element of q, k or v at a time, at positions where the kernels' shortcuts
     * could go wrong: the first and last key, a key inside a causal diagonal tile (read by some rows
     * of the tile, not others), a padded key past a key length in a partly valid block, a random one.
     */
    private void checkNonFinite(List<AttentionCase> cases, boolean quick) {
        for (AttentionCase ac : cases) {
            boolean wanted = ac.name().startsWith("tail") || ac.name().startsWith("causal N")
                    || ac.name().startsWith("key and query") || ac.name().startsWith("causal, key lengths");
            if (!wanted) {
                continue;
            }
            AttentionProblem p0 = ac.problem();
            Random rnd = new Random(SEED + ac.seed());
            int nk = p0.keyLength();
            List<int[]> positions = new ArrayList<>();   // tensor, b, h, n, d
            for (int t = 0; t < 3; t++) {
                int dim = t == 2 ? p0.valueDim() : p0.headDim();
                int length = t == 0 ? p0.queryLength() : nk;
                positions.add(new int[] {t, 0, 0, 0, rnd.nextInt(dim)});
                positions.add(new int[] {t, 0, 0, length - 1, rnd.nextInt(dim)});
                positions.add(new int[] {t, 0, 0, Math.min(length - 1, 70), rnd.nextInt(dim)});   // diagonal tile of block 1
                if (t > 0 && p0.hasKeyLengths() && p0.keyLength(0) + 3 < nk) {
                    positions.add(new int[] {t, 0, 0, p0.keyLength(0) + 3, rnd.nextInt(dim)});   // padded key, partial block
                }
                if (!quick) {
                    int b = rnd.nextInt(p0.batch());
                    positions.add(new int[] {t, b, 0, rnd.nextInt(length), rnd.nextInt(dim)});
                }
            }
            for (int[] at : positions) {
                for (float value : NON_FINITE) {
                    Tensor[] inputs = {ac.q().copy(), ac.k().copy(), ac.v().copy()};
                    Tensor target = inputs[at[0]];
                    target.data()[target.offset(at[1], at[2], at[3]) + at[4]] = value;
                    // The oracle does not depend on the precision: once per injection.
                    DenseOracle.Result expected = DenseOracle.compute(p0, ac.layout(), inputs[0], inputs[1], inputs[2]);
                    for (Precision precision : PRECISIONS) {
                        AttentionProblem p = p0.toBuilder().precision(precision).build();
                        for (int split : new int[] {SplitRows.OFF, 1}) {
                            String what = String.format(Locale.ROOT, "%s %s: %s at %s[b=%d, h=%d, n=%d, d=%d]%s",
                                    name(precision, p), ac.name(), value, "qkv".charAt(at[0]), at[1], at[2], at[3], at[4],
                                    split == SplitRows.OFF ? "" : " [split 1]");
                            try (CudaPlan plan = plan(p, ac.layout(), split)) {
                                Tensor out = ac.newOutput();
                                float[] lse = ac.newLse();
                                plan.forward(inputs[0], inputs[1], inputs[2], out, lse);
                                Comparison.Outcome o = Comparison.compareElementByElement(p, expected, out, lse,
                                        Tolerance.of(precision));
                                report(o.ok(), what, o.ok() ? "element by element" : o.message());
                            } catch (RuntimeException e) {
                                report(false, what, "threw " + e);
                            }
                        }
                    }
                }
            }
        }
    }

    /** forward16 on the host-rounded 16-bit inputs gives exactly what forward gives on float32 (converted on the device). */
    private void checkForward16(AttentionCase ac, DenseOracle.Result expected, Precision precision) {
        AttentionProblem p = ac.problem().toBuilder().precision(precision).build();
        String what = name(precision, p) + " " + ac.name() + " forward16";
        try (CudaPlan plan = plan(p, ac.layout(), SplitRows.OFF); DeviceBuffers buf = new DeviceBuffers()) {
            TensorLayout layout = ac.q().layout();
            CUdeviceptr q = buf.floats(ac.q().data(), 0);
            CUdeviceptr k = buf.floats(ac.k().data(), 0);
            CUdeviceptr v = buf.floats(ac.v().data(), 0);
            CUdeviceptr out32 = buf.empty(4L * ac.newOutput().data().length);
            CUdeviceptr lse32 = buf.empty(4L * p.lseSize());
            plan.forward(q, k, v, out32, lse32, layout, null);
            CUdeviceptr q16 = buf.shorts(HalfPrecision.encode(precision, ac.q().data()), 0);
            CUdeviceptr k16 = buf.shorts(HalfPrecision.encode(precision, ac.k().data()), 0);
            CUdeviceptr v16 = buf.shorts(HalfPrecision.encode(precision, ac.v().data()), 0);
            CUdeviceptr out16 = buf.empty(4L * ac.newOutput().data().length);
            CUdeviceptr lse16 = buf.empty(4L * p.lseSize());
            plan.forward16(q16, k16, v16, out16, lse16, layout, null);
            CudaException.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
            float[] a = buf.read(out32, ac.newOutput().data().length);
            float[] b = buf.read(out16, a.length);
            float[] la = buf.read(lse32, p.lseSize());
            float[] lb = buf.read(lse16, p.lseSize());
            report(sameBits(a, b) && sameBits(la, lb), what, "bit-identical to forward on float32 (device conversion = "
                    + "HalfPrecision)  " + plan.geometry().describe());
            Comparison.Outcome o = Comparison.compare(p, expected, Tensor.of(layout, b, p.batch(), p.queryHeads(),
                    p.queryLength(), p.valueDim()), lb, Tolerance.of(precision));
            report(o.ok(), what + " vs oracle", String.format(Locale.ROOT, "worst/tol %.3g", o.worstRatio()));
        } catch (RuntimeException e) {
            report(false, what, "threw " + e);
        }
    }

    /** Inputs an mma kernel cannot copy with cp.async (not 16-byte aligned) run the WMMA fallback, still right. */
    private void checkMisaligned(AttentionCase ac, DenseOracle.Result expected, Precision precision) {
        AttentionProblem p = ac.problem().toBuilder().precision(precision).build();
        boolean sixteen = precision != Precision.TF32;
        String what = name(precision, p) + " " + ac.name() + (sixteen ? " forward16" : " forward") + ", inputs misaligned";
        try (CudaPlan plan = plan(p, ac.layout(), SplitRows.OFF); DeviceBuffers buf = new DeviceBuffers()) {
            TensorLayout layout = ac.q().layout();
            int shift = sixteen ? 2 : 4;
            CUdeviceptr q = sixteen ? buf.shorts(HalfPrecision.encode(precision, ac.q().data()), shift)
                    : buf.floats(ac.q().data(), shift);
            CUdeviceptr k = sixteen ? buf.shorts(HalfPrecision.encode(precision, ac.k().data()), shift)
                    : buf.floats(ac.k().data(), shift);
            CUdeviceptr v = sixteen ? buf.shorts(HalfPrecision.encode(precision, ac.v().data()), shift)
                    : buf.floats(ac.v().data(), shift);
            int n = ac.newOutput().data().length;
            CUdeviceptr out = buf.empty(4L * n);
            CUdeviceptr lse = buf.empty(4L * p.lseSize());
            if (sixteen) {
                plan.forward16(q, k, v, out, lse, layout, null);
            } else {
                plan.forward(q, k, v, out, lse, layout, null);
            }
            CudaException.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
            Comparison.Outcome o = Comparison.compare(p, expected, Tensor.of(layout, buf.read(out, n), p.batch(),
                    p.queryHeads(), p.queryLength(), p.valueDim()), buf.read(lse, p.lseSize()), Tolerance.of(precision));
            report(o.ok(), what, String.format(Locale.ROOT, "worst/tol %.3g  fallback %s", o.worstRatio(),
                    plan.fallbackGeometry().describe()));
        } catch (RuntimeException e) {
            report(false, what, "threw " + e);
        }
    }

    /** Device buffers of one check, freed together. */
    private static final class DeviceBuffers implements AutoCloseable {
        private final List<CUdeviceptr> all = new ArrayList<>();

        DeviceBuffers() {
            CudaDevice.get().makeCurrent();
        }

        CUdeviceptr empty(long bytes) {
            CUdeviceptr p = new CUdeviceptr();
            CudaException.check(JCudaDriver.cuMemAlloc(p, Math.max(4, bytes + 16)), "cuMemAlloc");
            all.add(p);
            CudaException.check(JCudaDriver.cuMemsetD8(p, (byte) 0, bytes + 16), "cuMemsetD8");
            return p;
        }

        CUdeviceptr floats(float[] data, int byteShift) {
            CUdeviceptr p = empty(4L * data.length + byteShift).withByteOffset(byteShift);
            CudaException.check(JCudaDriver.cuMemcpyHtoD(p, Pointer.to(data), 4L * data.length), "cuMemcpyHtoD");
            return p;
        }

        CUdeviceptr shorts(short[] data, int byteShift) {
            CUdeviceptr p = empty(2L * data.length + byteShift).withByteOffset(byteShift);
            CudaException.check(JCudaDriver.cuMemcpyHtoD(p, Pointer.to(data), 2L * data.length), "cuMemcpyHtoD");
            return p;
        }

        float[] read(CUdeviceptr p, int count) {
            float[] a = new float[count];
            CudaException.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(a), p, 4L * count), "cuMemcpyDtoH");
            return a;
        }

        @Override
        public void close() {
            for (CUdeviceptr p : all) {
                JCudaDriver.cuMemFree(p);
            }
        }
    }

    /** @return the allowed pairs of a case, for the log */
    static long pairs(AttentionCase ac) {
        return TokenMask.of(ac.problem(), ac.layout()).allowedPairs();
    }
}
