package dev.starling.backend.vector;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import java.util.Arrays;
import java.util.Random;

/**
 * Times forward and backward on the vector backend (not a benchmark of record: the bench module
 * holds those). Arguments: {@code N [heads [D [reps [threads [chunks]]]]]}, defaults
 * {@code 16384 8 64 7}, BigBird defaults of {@code starling compare}, batch 1. Prints the median
 * and every time, and the load average before and after. Run with the test class path and
 * {@code --add-modules jdk.incubator.vector}.
 */
public final class BackwardTimingMain {
    private BackwardTimingMain() {
    }

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 16384;
        int heads = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        int dim = args.length > 2 ? Integer.parseInt(args[2]) : 64;
        int reps = args.length > 3 ? Integer.parseInt(args[3]) : 7;
        int threads = args.length > 4 ? Integer.parseInt(args[4]) : Runtime.getRuntime().availableProcessors();
        int chunks = args.length > 5 ? Integer.parseInt(args[5]) : 0;
        AttentionProblem p = AttentionProblem.builder().heads(heads).length(n).headDim(dim).build();
        AttentionCase c = AttentionCase.random("timing", 1, p,
                Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=0)"), TensorLayout.BHSD,
                AttentionCase.Values.NORMAL);
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        Tensor g = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, dim);
        Random rnd = new Random(2);
        for (int i = 0; i < g.data().length; i++) {
            g.data()[i] = (float) rnd.nextGaussian();
        }
        Tensor dq = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, dim);
        Tensor dk = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, dim);
        Tensor dv = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, dim);
        System.out.println("load before: " + load());
        try (AttentionPlan plan = new VectorPlan(VectorBackend.withThreads(threads), p, c.layout(), threads, chunks)) {
            for (int w = 0; w < 3; w++) {
                plan.forward(c.q(), c.k(), c.v(), out, lse);
                plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq, dk, dv);
            }
            double[] fwd = new double[reps];
            double[] bwd = new double[reps];
            double[] fwdCpu = new double[reps];
            double[] bwdCpu = new double[reps];
            java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
            for (int r = 0; r < reps; r++) {
                long c0 = mx.getCurrentThreadCpuTime();
                long t0 = System.nanoTime();
                plan.forward(c.q(), c.k(), c.v(), out, lse);
                long t1 = System.nanoTime();
                long c1 = mx.getCurrentThreadCpuTime();
                plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq, dk, dv);
                long t2 = System.nanoTime();
                long c2 = mx.getCurrentThreadCpuTime();
                fwd[r] = (t1 - t0) / 1e6;
                bwd[r] = (t2 - t1) / 1e6;
                fwdCpu[r] = (c1 - c0) / 1e6;
                bwdCpu[r] = (c2 - c1) / 1e6;
            }
            if (threads == 1) {
                // With one thread all work runs on this thread: CPU time is the work, whatever else runs.
                System.out.printf("calling thread CPU time: forward median %.1f ms, backward median %.1f ms, ratio %.2f%n",
                        median(fwdCpu), median(bwdCpu), median(bwdCpu) / median(fwdCpu));
            }
            double f = median(fwd);
            double b = median(bwd);
            System.out.printf("minimum: forward %.1f ms, backward %.1f ms, ratio %.2f%n", min(fwd), min(bwd),
                    min(bwd) / min(fwd));
            System.out.printf("N %d H %d D %d threads %d: forward median %.1f ms %s%n", n, heads, dim, threads, f,
                    Arrays.toString(round(fwd)));
            System.out.printf("backward median %.1f ms %s; backward / forward %.2f, (forward + backward) / forward %.2f%n",
                    b, Arrays.toString(round(bwd)), b / f, (f + b) / f);
        }
        System.out.println("load after: " + load());
    }

    private static double min(double[] x) {
        return Arrays.stream(x).min().orElse(Double.NaN);
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static double[] round(double[] x) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = Math.round(x[i] * 10) / 10.0;
        }
        return r;
    }

    private static String load() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).strip();
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }
}
