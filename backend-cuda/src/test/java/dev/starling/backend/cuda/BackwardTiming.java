package dev.starling.backend.cuda;

import dev.starling.api.Feature;
import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Tensor;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.TokenMask;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The cuda backend's backward kernels on a GPU, for {@code backend-cuda/gpu/check.sh} (a program,
 * not a unit test: it needs a GPU and {@code -Dstarling.cuda.backward=true}). Per shape (batch 1,
 * BigBird block 64, window 3, global 2, random 3, seed 0, as {@code CudaBenchmark}): one forward
 * for {@code O} and LSE, then {@code backward} calls; prints the median GPU time of the three
 * backward kernels (CUDA events, without the host copies), the median wall time of the whole call
 * (with the copies), useful TFLOP/s of the kernels, and whether two calls gave the same bits.
 * Useful backward work: {@code 2·P·(3D + 2Dv)} flops ({@code P} the allowed pairs; the products
 * {@code S = QKᵀ}, {@code dP = dO·Vᵀ}, {@code dV}, {@code dK} and {@code dQ}).
 *
 * <p>{@code --export DIR} writes the layout of every shape ({@code layout_N_H.npy}, as
 * {@code CudaBenchmark}) and, for the first head count, the first head dim and the smallest length, the inputs and
 * Starling's gradients ({@code bwd_q_N.npy}, {@code bwd_k_N.npy}, {@code bwd_v_N.npy},
 * {@code bwd_do_N.npy}, {@code bwd_dq_N.npy}, {@code bwd_dk_N.npy}, {@code bwd_dv_N.npy}) for
 * {@code backend-cuda/gpu/flex_backward.py} to check against float64 and FlexAttention.
 *
 * <pre>
 * java -Dstarling.cuda.backward=true -cp ... dev.starling.backend.cuda.BackwardTiming \
 *     [--lengths 4096,16384] [--heads 8,16] [--dims 64,128] [--reps 10] [--export DIR] [--csv FILE]
 * </pre>
 * Exit status: 0 when every shape ran and was deterministic, 1 otherwise, 4 without a usable GPU
 * or with backward not declared.
 */
public final class BackwardTiming {
    private static final String PATTERN = "bigbird(block=64, window=3, global=2, random=3, seed=0)";

    private BackwardTiming() {
    }

    /**
     * @param args see the class comment
     * @throws IOException if the export or the CSV fails
     */
    public static void main(String[] args) throws IOException {
        int[] lengths = {4096, 16384};
        int[] heads = {8, 16};
        int[] dims = {64, 128};
        int reps = 10;
        Path export = null;
        Path csv = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--lengths" -> lengths = ints(args[++i]);
                case "--heads" -> heads = ints(args[++i]);
                case "--dims" -> dims = ints(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--export" -> export = Path.of(args[++i]);
                case "--csv" -> csv = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        CudaBackend backend = new CudaBackend();
        Availability a = backend.availability();
        System.out.println("backward timing: " + a);
        if (!a.isAvailable()) {
            System.exit(4);
        }
        if (!backend.capabilities().has(Feature.BACKWARD)) {
            System.out.println("backward timing: the cuda backend does not declare backward; run with -D"
                    + CudaBackend.BACKWARD_PROPERTY + "=true");
            System.exit(4);
        }
        if (export != null) {
            Files.createDirectories(export);
        }
        int smallest = Arrays.stream(lengths).min().orElse(0);
        int status = 0;
        try (PrintWriter out = csv == null ? null : new PrintWriter(Files.newBufferedWriter(csv))) {
            if (out != null) {
                out.println("heads,dim,tokens,kernel_ms,wall_ms,tflops,deterministic");
            }
            System.out.printf(Locale.ROOT, "%5s %4s %7s %10s %10s %8s  %s%n", "heads", "D", "N", "kernel ms", "wall ms",
                    "TFLOP/s", "same bits twice");
            for (int h : heads) {
                for (int d : dims) {
                    for (int n : lengths) {
                        try {
                            boolean exporting = export != null && h == heads[0] && d == dims[0] && n == smallest;
                            Row r = time(backend, h, d, n, reps, export, exporting);
                            System.out.printf(Locale.ROOT, "%5d %4d %7d %10.3f %10.3f %8.2f  %s%n", h, d, n, r.kernelMs,
                                    r.wallMs, r.tflops, r.deterministic ? "yes" : "NO");
                            if (out != null) {
                                out.printf(Locale.ROOT, "%d,%d,%d,%.4f,%.4f,%.3f,%s%n", h, d, n, r.kernelMs, r.wallMs,
                                        r.tflops, r.deterministic);
                                out.flush();
                            }
                            status |= r.deterministic ? 0 : 1;
                        } catch (RuntimeException | OutOfMemoryError e) {
                            System.out.printf(Locale.ROOT, "%5d %4d %7d  failed: %s%n", h, d, n, e);
                            status = 1;
                        }
                    }
                }
            }
        }
        System.exit(status);
    }

    private record Row(double kernelMs, double wallMs, double tflops, boolean deterministic) {
    }

    private static Row time(CudaBackend backend, int h, int d, int n, int reps, Path export, boolean exporting)
            throws IOException {
        AttentionProblem problem = AttentionProblem.builder().heads(h).length(n).headDim(d).build();
        BlockLayout layout = Patterns.parse(PATTERN).layout(n, n, h);
        if (export != null && !Files.exists(export.resolve("layout_" + n + "_" + h + ".npy"))) {
            NpyArray.ofBytes(layout.maskBytes(h), h, layout.queryBlocks(), layout.keyBlocks())
                    .write(export.resolve("layout_" + n + "_" + h + ".npy"));
        }
        Random random = new Random(1000L * n + 10L * h + d);
        Tensor q = normal(random, h, n, d);
        Tensor k = normal(random, h, n, d);
        Tensor v = normal(random, h, n, d);
        Tensor dOut = normal(random, h, n, d);
        Tensor out = Tensor.bhsd(new float[h * n * d], 1, h, n, d);
        float[] lse = new float[problem.lseSize()];
        Tensor dq = Tensor.bhsd(new float[h * n * d], 1, h, n, d);
        Tensor dk = Tensor.bhsd(new float[h * n * d], 1, h, n, d);
        Tensor dv = Tensor.bhsd(new float[h * n * d], 1, h, n, d);
        try (AttentionPlan plan = backend.plan(problem, layout)) {
            CudaPlan cuda = (CudaPlan) plan;
            plan.forward(q, k, v, out, lse);
            plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
            float[][] first = {dq.data().clone(), dk.data().clone(), dv.data().clone()};
            plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
            boolean same = Arrays.equals(first[0], dq.data()) && Arrays.equals(first[1], dk.data())
                    && Arrays.equals(first[2], dv.data());
            List<Double> kernel = new ArrayList<>();
            List<Double> wall = new ArrayList<>();
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
                wall.add((System.nanoTime() - t0) / 1e6);
                kernel.add((double) cuda.lastBackwardKernelMillis());
            }
            if (exporting) {
                for (String[] pair : new String[][] {{"q", "0"}, {"k", "1"}, {"v", "2"}, {"do", "3"}, {"dq", "4"},
                    {"dk", "5"}, {"dv", "6"}}) {
                    Tensor t = new Tensor[] {q, k, v, dOut, dq, dk, dv}[Integer.parseInt(pair[1])];
                    NpyArray.ofFloats(t.data(), 1, h, n, d).write(export.resolve("bwd_" + pair[0] + "_" + n + ".npy"));
                }
            }
            double pairs = TokenMask.of(problem, layout).allowedPairs();
            double ms = median(kernel);
            return new Row(ms, median(wall), 2.0 * pairs * (3 * d + 2 * d) / ms / 1e9, same);
        }
    }

    private static Tensor normal(Random random, int h, int n, int d) {
        float[] x = new float[h * n * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        return Tensor.bhsd(x, 1, h, n, d);
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(Double::compare);
        int m = s.size();
        return m == 0 ? Double.NaN : m % 2 == 1 ? s.get(m / 2) : (s.get(m / 2 - 1) + s.get(m / 2)) / 2;
    }

    private static int[] ints(String csv) {
        return Arrays.stream(csv.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
    }
}
