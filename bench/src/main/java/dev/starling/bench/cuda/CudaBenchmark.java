package dev.starling.bench.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.PlanOptions;
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
import dev.starling.backend.cuda.HalfPrecision;
import dev.starling.backend.cuda.KernelFamily;
import dev.starling.backend.cuda.MmaSpecialisation;
import dev.starling.backend.cuda.SplitRows;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

/**
 * Times the cuda backend on a GPU machine: device-resident tensors timed with CUDA events (median
 * of up to {@code --reps} launches after warm-up, fewer when one launch is long: about
 * {@code --budget-ms} per row), optionally the host-array {@code forward} (copies in and out
 * included) by wall clock. One row per precision, variant, heads, head dim and length, with useful
 * TFLOP/s by DESIGN section 7 ({@link TokenMask#usefulFlops(AttentionProblem, long)}:
 * {@code 2·(D + Dv)·P}, {@code P} the allowed pairs), the speed-up over the row's first variant,
 * and how far the output is from that variant's (max |diff| over the first heads' rows). Lives in
 * the bench module so that no backend ships benchmark code.
 *
 * <pre>
 * java -cp ... dev.starling.bench.cuda.CudaBenchmark [--pattern SPEC] [--lengths 4096,16384,65536,131072]
 *     [--heads 8,16] [--dims 64,128] [--precisions bf16] [--variants wmma,mma+split16,mma16+split16]
 *     [--reps 30] [--budget-ms 1500] [--host] [--export DIR] [--csv FILE]
 * </pre>
 *
 * A variant is the kernels ({@code wmma}: today's; {@code mma}: the mma.sync kernels,
 * {@code -Dstarling.cuda.kernels=mma}), {@code 16} appended when the inputs are given on the device
 * in the precision's 16-bit format ({@link CudaPlan#forward16}: no conversion pass), then
 * {@code +splitN} ({@code -Dstarling.cuda.splitBlocks=N}) and {@code +stagesN}
 * ({@code -Dstarling.cuda.mmaStages=N}). Without {@code 16} the inputs are float32 device tensors,
 * converted by the kernels when they need to.
 *
 * <p>{@code --export DIR} writes the layout of every length and head count ({@code layout_N_H.npy},
 * the array {@code starling pattern --npy} writes) and, for 8 heads, head dim 64 and lengths up to
 * 16,384, the inputs ({@code q_N.npy}, {@code k_N.npy}, {@code v_N.npy}) and Starling's output per
 * precision and variant ({@code out_N_bf16_mma+split16.npy}, ...), so a peer can be checked on the
 * same inputs. {@code --csv FILE} writes the rows as CSV.
 */
public final class CudaBenchmark {

    private CudaBenchmark() {
    }

    /**
     * One way of running the backend.
     *
     * @param text as given, e.g. {@code mma16+split16}
     * @param family the kernels
     * @param sixteenBitInputs whether the inputs are 16-bit device tensors ({@link CudaPlan#forward16})
     * @param split key blocks per unit, or 0 for no split
     * @param stages forced mma stages, or 0
     */
    record Variant(String text, KernelFamily family, boolean sixteenBitInputs, int split, int stages) {
        static Variant parse(String text) {
            String[] parts = text.strip().split("\\+");
            String kernels = parts[0].strip().toLowerCase(Locale.ROOT);
            boolean in16 = kernels.endsWith("16");
            KernelFamily family = KernelFamily.parse(in16 ? kernels.substring(0, kernels.length() - 2) : kernels);
            int split = 0;
            int stages = 0;
            for (int i = 1; i < parts.length; i++) {
                String opt = parts[i].strip().toLowerCase(Locale.ROOT);
                if (opt.startsWith("split")) {
                    split = SplitRows.maxBlocksPerUnit(opt.substring(5));
                } else if (opt.startsWith("stages")) {
                    stages = MmaSpecialisation.parseStages(opt.substring(6));
                } else {
                    throw new IllegalArgumentException("variant \"" + text + "\": unknown option \"" + parts[i]
                            + "\" (splitN or stagesN)");
                }
            }
            return new Variant(text.strip(), family, in16, split, stages);
        }

        /** @return the plan options of this variant (nothing global changes: each plan has its own) */
        PlanOptions options() {
            PlanOptions o = PlanOptions.none().with(CudaBackend.KERNELS, family);
            if (split > 0) {
                o = o.with(CudaBackend.SPLIT_BLOCKS, split);
            }
            return stages == 0 ? o : o.with(CudaBackend.MMA_STAGES, stages);
        }
    }

    private static int[] ints(String s) {
        return Arrays.stream(s.split(",")).map(String::strip).mapToInt(Integer::parseInt).toArray();
    }

    /**
     * @param args see the class documentation
     * @throws IOException if the export or the CSV fails
     */
    public static void main(String[] args) throws IOException {
        String patternText = "bigbird(block=64, window=3, global=2, random=3, seed=0)";
        int[] lengths = {4096, 16384, 65536};
        int[] heads = {8};
        int[] dims = {64};
        List<Precision> precisions = List.of(Precision.FP32, Precision.TF32, Precision.BF16);
        PlanOptions defaults = PlanOptions.fromSystemProperties(new CudaBackend().options());
        int defaultSplit = defaults.get(CudaBackend.SPLIT_BLOCKS);
        List<Variant> variants = List.of(Variant.parse(defaults.get(CudaBackend.KERNELS).text()
                + (defaultSplit == SplitRows.OFF ? "" : "+split" + defaultSplit)));
        int reps = 30;
        double budgetMs = 1500;
        boolean host = false;
        Path export = null;
        Path csv = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--pattern" -> patternText = args[++i];
                case "--lengths" -> lengths = ints(args[++i]);
                case "--heads" -> heads = ints(args[++i]);
                case "--dims" -> dims = ints(args[++i]);
                case "--precisions" -> precisions = Arrays.stream(args[++i].split(","))
                        .map(p -> Precision.valueOf(p.strip().toUpperCase(Locale.ROOT))).toList();
                case "--variants" -> variants = Arrays.stream(args[++i].split(",")).map(Variant::parse).toList();
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--budget-ms" -> budgetMs = Double.parseDouble(args[++i]);
                case "--host" -> host = true;
                case "--export" -> export = Path.of(args[++i]);
                case "--csv" -> csv = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        CudaBackend backend = new CudaBackend();
        System.out.println("device: " + backend.availability());
        if (!backend.availability().isAvailable()) {
            System.exit(1);
        }
        PatternSpec pattern = Patterns.parse(patternText);
        System.out.println("pattern: " + pattern.text() + ", batch 1, BHSD, device-resident, median of up to " + reps
                + " launches (CUDA events, about " + (long) budgetMs + " ms a row)");
        System.out.println("variants: " + variants.stream().map(Variant::text).toList()
                + "; 'x first' is the speed-up over the first variant, 'vs first' the max |diff| of the outputs");
        System.out.printf("%-5s %-15s %5s %4s %7s %10s %9s %8s %10s %8s  %s%n", "prec", "variant", "heads", "D", "N",
                "ms device", "TFLOP/s", "x first", "vs first", "density", host ? "ms w/ copies, kernels" : "kernels");
        if (export != null) {
            Files.createDirectories(export);
        }
        try (PrintWriter csvOut = csv == null ? null : new PrintWriter(Files.newBufferedWriter(csv))) {
            if (csvOut != null) {
                csvOut.println("precision,variant,heads,dim,tokens,ms,tflops,speedup_vs_first,max_abs_diff_vs_first,"
                        + "density,kernels");
            }
            Config config = new Config(reps, budgetMs, host, export, csvOut);
            for (int h : heads) {
                for (int d : dims) {
                    for (int n : lengths) {
                        run(backend, pattern, h, d, n, precisions, variants, config);
                    }
                }
            }
        }
    }

    private record Config(int reps, double budgetMs, boolean host, Path export, PrintWriter csv) {
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

    private static short[] encodeParallel(Precision p, float[] values) {
        short[] out = new short[values.length];
        IntStream.range(0, 64).parallel().forEach(part -> {
            int from = (int) ((long) values.length * part / 64);
            int to = (int) ((long) values.length * (part + 1) / 64);
            short[] chunk = HalfPrecision.encode(p, Arrays.copyOfRange(values, from, to));
            System.arraycopy(chunk, 0, out, from, chunk.length);
        });
        return out;
    }

    /** Elements of the output compared between variants: the first rows (at most 8 M floats). */
    private static final int COMPARED = 8 << 20;

    private static void run(CudaBackend backend, PatternSpec pattern, int h, int d, int n, List<Precision> precisions,
                            List<Variant> variants, Config config) throws IOException {
        BlockLayout layout = pattern.layout(n, n, h);
        long pairs = TokenMask.of(layout, h).allowedPairs();
        double flops = TokenMask.usefulFlops(AttentionProblem.builder().heads(h).length(n).headDim(d).build(), pairs);
        double density = 100.0 * pairs / ((double) h * n * n);
        long count = (long) h * n * d;
        Tensor q = Tensor.bhsd(random(count, 1), 1, h, n, d);
        Tensor k = Tensor.bhsd(random(count, 2), 1, h, n, d);
        Tensor v = Tensor.bhsd(random(count, 3), 1, h, n, d);
        Path export = config.export();
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
        long bytes = 4L * count;
        List<CUdeviceptr> buffers = new ArrayList<>();
        try {
            CUdeviceptr dq = alloc(bytes, buffers);
            CUdeviceptr dk = alloc(bytes, buffers);
            CUdeviceptr dv = alloc(bytes, buffers);
            CUdeviceptr dout = alloc(bytes, buffers);
            check(JCudaDriver.cuMemcpyHtoD(dq, Pointer.to(q.data()), bytes), "copy q");
            check(JCudaDriver.cuMemcpyHtoD(dk, Pointer.to(k.data()), bytes), "copy k");
            check(JCudaDriver.cuMemcpyHtoD(dv, Pointer.to(v.data()), bytes), "copy v");
            Map<Precision, CUdeviceptr[]> sixteen = new HashMap<>();
            int compared = (int) Math.min(COMPARED, count);
            for (Precision precision : precisions) {
                String prec = precision.name().toLowerCase(Locale.ROOT);
                AttentionProblem problem = AttentionProblem.builder().heads(h).length(n).headDim(d).precision(precision)
                        .build();
                double firstMs = Double.NaN;
                float[] firstOut = null;
                for (Variant variant : variants) {
                    String head = String.format(Locale.ROOT, "%-5s %-15s %5d %4d %7d", prec, variant.text(), h, d, n);
                    boolean sixteenBit = precision == Precision.BF16 || precision == Precision.FP16;
                    if (variant.sixteenBitInputs() && !sixteenBit) {
                        System.out.println(head + "  n/a: 16-bit inputs need bf16 or fp16");
                        continue;
                    }
                    try (CudaPlan plan = (CudaPlan) backend.plan(problem, layout, variant.options())) {
                        CUdeviceptr[] in;
                        if (variant.sixteenBitInputs()) {
                            in = sixteen.get(precision);
                            if (in == null) {
                                in = new CUdeviceptr[3];
                                Tensor[] src = {q, k, v};
                                for (int t = 0; t < 3; t++) {
                                    short[] enc = encodeParallel(precision, src[t].data());
                                    in[t] = alloc(2L * count, buffers);
                                    check(JCudaDriver.cuMemcpyHtoD(in[t], Pointer.to(enc), 2L * count), "copy 16-bit input");
                                }
                                sixteen.put(precision, in);
                            }
                        } else {
                            in = new CUdeviceptr[] {dq, dk, dv};
                        }
                        CUdeviceptr[] inputs = in;
                        Runnable call = variant.sixteenBitInputs()
                                ? () -> plan.forward16(inputs[0], inputs[1], inputs[2], dout, null, TensorLayout.BHSD, null)
                                : () -> plan.forward(inputs[0], inputs[1], inputs[2], dout, null, TensorLayout.BHSD, null);
                        double ms = timeDevice(call, config.reps(), config.budgetMs());
                        float[] out = new float[compared];
                        check(JCudaDriver.cuMemcpyDtoH(Pointer.to(out), dout, 4L * compared), "read out");
                        double diff = Double.NaN;
                        if (firstOut == null) {
                            firstOut = out;
                            firstMs = ms;
                        } else {
                            diff = maxAbsDiff(firstOut, out);
                        }
                        String kernels = plan.geometry().describe();
                        String hostMs = "";
                        if (config.host() && !variant.sixteenBitInputs()) {
                            Tensor o = Tensor.zeros(TensorLayout.BHSD, 1, h, n, d);
                            hostMs = String.format(Locale.ROOT, "%.2f ms w/ copies, ",
                                    timeHost(plan, q, k, v, o, Math.max(3, config.reps() / 10)));
                        }
                        System.out.printf(Locale.ROOT, "%s %10.3f %9.2f %8.2f %10.2e %7.2f%%  %s%s%n", head, ms,
                                flops / ms / 1e9, firstMs / ms, diff, density, hostMs, kernels);
                        if (config.csv() != null) {
                            config.csv().printf(Locale.ROOT, "%s,%s,%d,%d,%d,%.4f,%.3f,%.3f,%.3e,%.4f,%s%n", prec,
                                    variant.text(), h, d, n, ms, flops / ms / 1e9, firstMs / ms, diff, density, kernels);
                            config.csv().flush();
                        }
                        if (exporting) {
                            float[] all = new float[Math.toIntExact(count)];
                            check(JCudaDriver.cuMemcpyDtoH(Pointer.to(all), dout, bytes), "read out");
                            NpyArray.ofFloats(all, 1, h, n, d).write(export.resolve("out_" + n + "_" + prec + "_"
                                    + variant.text() + ".npy"));
                        }
                    } catch (RuntimeException e) {
                        System.out.printf(Locale.ROOT, "%s  failed: %s%n", head, e.getMessage());
                    }
                }
            }
        } finally {
            for (CUdeviceptr p : buffers) {
                JCudaDriver.cuMemFree(p);
            }
        }
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            double x = Math.abs((double) a[i] - b[i]);
            if (!(x <= worst)) {
                worst = x;   // NaN sticks
            }
        }
        return worst;
    }

    private static CUdeviceptr alloc(long bytes, List<CUdeviceptr> owned) {
        CUdeviceptr p = new CUdeviceptr();
        check(JCudaDriver.cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + ")");
        owned.add(p);
        return p;
    }

    private static void check(int code, String what) {
        CudaException.check(code, what);
    }

    /** Median of CUDA-event times: 2 warm-up launches, then up to {@code reps}, fewer when one launch is long. */
    private static double timeDevice(Runnable call, int reps, double budgetMs) {
        for (int w = 0; w < 2; w++) {
            call.run();
        }
        check(JCudaDriver.cuCtxSynchronize(), "warm-up");
        CUevent start = new CUevent();
        CUevent stop = new CUevent();
        check(JCudaDriver.cuEventCreate(start, 0), "cuEventCreate");
        check(JCudaDriver.cuEventCreate(stop, 0), "cuEventCreate");
        List<Double> times = new ArrayList<>();
        float[] ms = new float[1];
        int planned = reps;
        for (int r = 0; r < planned; r++) {
            check(JCudaDriver.cuEventRecord(start, null), "cuEventRecord");
            call.run();
            check(JCudaDriver.cuEventRecord(stop, null), "cuEventRecord");
            check(JCudaDriver.cuEventSynchronize(stop), "cuEventSynchronize");
            check(JCudaDriver.cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime");
            times.add((double) ms[0]);
            if (r == 0) {
                planned = (int) Math.max(3, Math.min(reps, budgetMs / Math.max(ms[0], 1e-3)));
            }
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
