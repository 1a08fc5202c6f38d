package dev.starling.bench.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.TokenMask;
import dev.starling.backend.cuda.CudaBackend;
import dev.starling.backend.cuda.CudaException;
import dev.starling.backend.cuda.CudaPlan;
import dev.starling.backend.cuda.SplitRows;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

/**
 * Times the cuda backend on a GPU machine: device-resident tensors timed with CUDA events (median
 * of many launches after warm-up), and the host-array {@code forward} (copies in and out included)
 * timed by wall clock. Prints one table row per precision, heads, head dim and length, with useful
 * TFLOP/s by DESIGN section 7 ({@link TokenMask#usefulFlops(AttentionProblem, long)}: {@code 2·(D + Dv)·P}, {@code P} the allowed
 * pairs). Lives in the bench module so that no backend ships benchmark code.
 *
 * <pre>
 * java -cp ... dev.starling.bench.cuda.CudaBenchmark [--pattern SPEC] [--lengths 4096,16384,65536]
 *     [--heads 8,16] [--dims 64,128] [--precisions fp32,tf32,bf16] [--reps 30] [--export DIR]
 * </pre>
 *
 * {@code --export DIR} writes the layout of every length and head count ({@code layout_N_H.npy},
 * the array {@code starling pattern --npy} writes) and, for 8 heads, head dim 64 and lengths up to
 * 16,384, the inputs ({@code q_N.npy}, {@code k_N.npy}, {@code v_N.npy}) and Starling's output per
 * precision ({@code out_N_bf16.npy}, ...), so a peer can be checked on the same inputs.
 */
public final class CudaBenchmark {

    private CudaBenchmark() {
    }

    private static int[] ints(String s) {
        return Arrays.stream(s.split(",")).map(String::strip).mapToInt(Integer::parseInt).toArray();
    }

    /**
     * @param args see the class documentation
     * @throws IOException if the export fails
     */
    public static void main(String[] args) throws IOException {
        String patternText = "bigbird(block=64, window=3, global=2, random=3, seed=0)";
        int[] lengths = {4096, 16384, 65536};
        int[] heads = {8};
        int[] dims = {64};
        List<Precision> precisions = List.of(Precision.FP32, Precision.TF32, Precision.BF16);
        int reps = 30;
        Path export = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--pattern" -> patternText = args[++i];
                case "--lengths" -> lengths = ints(args[++i]);
                case "--heads" -> heads = ints(args[++i]);
                case "--dims" -> dims = ints(args[++i]);
                case "--precisions" -> precisions = Arrays.stream(args[++i].split(","))
                        .map(p -> Precision.valueOf(p.strip().toUpperCase(Locale.ROOT))).toList();
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--export" -> export = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        CudaBackend backend = new CudaBackend();
        System.out.println("device: " + backend.availability());
        if (!backend.availability().isAvailable()) {
            System.exit(1);
        }
        PatternSpec pattern = Patterns.parse(patternText);
        System.out.println("pattern: " + pattern.text() + ", batch 1, BHSD, median of " + reps + " launches (CUDA events)");
        int split = SplitRows.maxBlocksPerUnit();
        System.out.println(split == SplitRows.OFF ? "rows: not split (-D" + SplitRows.PROPERTY + " unset)"
                : "rows: split into units of at most " + split + " key blocks (-D" + SplitRows.PROPERTY + ")");
        System.out.printf("%-5s %5s %4s %7s %10s %9s %13s %10s%n", "prec", "heads", "D", "N", "ms device", "TFLOP/s",
                "ms w/ copies", "density");
        if (export != null) {
            Files.createDirectories(export);
        }
        for (int h : heads) {
            for (int d : dims) {
                for (int n : lengths) {
                    run(backend, pattern, h, d, n, precisions, reps, export);
                }
            }
        }
    }

    private static float[] random(long count, long seed) {
        float[] a = new float[Math.toIntExact(count)];
        IntStream.range(0, 64).parallel().forEach(part -> {
            long state = seed * 0x9E3779B97F4A7C15L + part;
            int from = (int) ((long) a.length * part / 64);
            int to = (int) ((long) a.length * (part + 1) / 64);
            for (int i = from; i < to; i++) {
                state = state * 6364136223846793005L + 1442695040888963407L;
                // Sum of two uniforms in [-1, 1): bell-shaped, unit-ish variance; enough for timing.
                a[i] = ((state >>> 40) / (float) (1L << 24) + (state >>> 16 & 0xFFFFFF) / (float) (1 << 24)) - 1f;
            }
        });
        return a;
    }

    private static void run(CudaBackend backend, PatternSpec pattern, int h, int d, int n, List<Precision> precisions,
                            int reps, Path export) throws IOException {
        BlockLayout layout = pattern.layout(n, n, h);
        long pairs = TokenMask.of(layout, h).allowedPairs();
        double flops = TokenMask.usefulFlops(AttentionProblem.builder().heads(h).length(n).headDim(d).build(), pairs);
        long count = (long) h * n * d;
        Tensor q = Tensor.bhsd(random(count, 1), 1, h, n, d);
        Tensor k = Tensor.bhsd(random(count, 2), 1, h, n, d);
        Tensor v = Tensor.bhsd(random(count, 3), 1, h, n, d);
        boolean exporting = export != null && h == 8 && d == 64 && n <= 16384;
        if (export != null && !Files.exists(export.resolve("layout_" + n + "_" + h + ".npy"))) {
            NpyArray.ofBytes(layout.maskBytes(h), h, layout.queryBlocks(), layout.keyBlocks())
                    .write(export.resolve("layout_" + n + "_" + h + ".npy"));
        }
        if (exporting) {
            NpyArray.ofFloats(q.data(), 1, h, n, d).write(export.resolve("q_" + n + ".npy"));
            NpyArray.ofFloats(k.data(), 1, h, n, d).write(export.resolve("k_" + n + ".npy"));
            NpyArray.ofFloats(v.data(), 1, h, n, d).write(export.resolve("v_" + n + ".npy"));
        }
        for (Precision precision : precisions) {
            AttentionProblem problem = AttentionProblem.builder().heads(h).length(n).headDim(d).precision(precision).build();
            try (CudaPlan plan = (CudaPlan) backend.plan(problem, layout)) {
                long bytes = 4L * count;
                CUdeviceptr dq = alloc(bytes);
                CUdeviceptr dk = alloc(bytes);
                CUdeviceptr dv = alloc(bytes);
                CUdeviceptr dout = alloc(bytes);
                try {
                    check(JCudaDriver.cuMemcpyHtoD(dq, Pointer.to(q.data()), bytes), "copy q");
                    check(JCudaDriver.cuMemcpyHtoD(dk, Pointer.to(k.data()), bytes), "copy k");
                    check(JCudaDriver.cuMemcpyHtoD(dv, Pointer.to(v.data()), bytes), "copy v");
                    double deviceMs = timeDevice(plan, dq, dk, dv, dout, reps);
                    Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, h, n, d);
                    double hostMs = timeHost(plan, q, k, v, out, Math.max(3, reps / 10));
                    System.out.printf(Locale.ROOT, "%-5s %5d %4d %7d %10.3f %9.2f %13.2f %9.2f%%%n",
                            precision.name().toLowerCase(Locale.ROOT), h, d, n, deviceMs, flops / deviceMs / 1e9, hostMs,
                            100.0 * pairs / ((double) h * n * n));
                    if (exporting) {
                        NpyArray.ofFloats(out.data(), 1, h, n, d).write(export.resolve(
                                "out_" + n + "_" + precision.name().toLowerCase(Locale.ROOT) + ".npy"));
                    }
                } finally {
                    for (CUdeviceptr p : new CUdeviceptr[] {dq, dk, dv, dout}) {
                        JCudaDriver.cuMemFree(p);
                    }
                }
            } catch (RuntimeException e) {
                System.out.printf(Locale.ROOT, "%-5s %5d %4d %7d  failed: %s%n", precision.name().toLowerCase(Locale.ROOT), h,
                        d, n, e.getMessage());
            }
        }
    }

    private static CUdeviceptr alloc(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        check(JCudaDriver.cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + ")");
        return p;
    }

    private static void check(int code, String what) {
        CudaException.check(code, what);
    }

    private static double timeDevice(CudaPlan plan, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, CUdeviceptr out, int reps) {
        for (int w = 0; w < 5; w++) {
            plan.forward(q, k, v, out, null, TensorLayout.BHSD, null);
        }
        check(JCudaDriver.cuCtxSynchronize(), "warm-up");
        CUevent start = new CUevent();
        CUevent stop = new CUevent();
        check(JCudaDriver.cuEventCreate(start, 0), "cuEventCreate");
        check(JCudaDriver.cuEventCreate(stop, 0), "cuEventCreate");
        List<Double> times = new ArrayList<>();
        float[] ms = new float[1];
        for (int r = 0; r < reps; r++) {
            check(JCudaDriver.cuEventRecord(start, null), "cuEventRecord");
            plan.forward(q, k, v, out, null, TensorLayout.BHSD, null);
            check(JCudaDriver.cuEventRecord(stop, null), "cuEventRecord");
            check(JCudaDriver.cuEventSynchronize(stop), "cuEventSynchronize");
            check(JCudaDriver.cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime");
            times.add((double) ms[0]);
        }
        JCudaDriver.cuEventDestroy(start);
        JCudaDriver.cuEventDestroy(stop);
        return median(times);
    }

    private static double timeHost(CudaPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, int reps) {
        plan.forward(q, k, v, out, null);
        List<Double> times = new ArrayList<>();
        for (int r = 0; r < reps; r++) {
            long t0 = System.nanoTime();
            plan.forward(q, k, v, out, null);
            times.add((System.nanoTime() - t0) / 1e6);
        }
        return median(times);
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(Double::compare);
        return s.get(s.size() / 2);
    }
}
