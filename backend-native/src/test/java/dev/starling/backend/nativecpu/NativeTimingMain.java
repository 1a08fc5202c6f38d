package dev.starling.backend.nativecpu;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;
import java.util.Random;
import java.util.ServiceLoader;

/**
 * Times forward calls (not a test): BigBird defaults, B1 H8 D64, per length, precision and backend
 * (any backend on the class path, by name), median of {@code reps} calls after a warm-up.
 *
 * <pre>java -cp ... dev.starling.backend.nativecpu.NativeTimingMain 1024,4096,16384 fp32,bf16 native,vector 9</pre>
 */
final class NativeTimingMain {
    private NativeTimingMain() {
    }

    public static void main(String[] args) {
        int[] lengths = Arrays.stream(args[0].split(",")).mapToInt(Integer::parseInt).toArray();
        String[] precisions = args[1].split(",");
        String[] backends = args[2].split(",");
        int reps = Integer.parseInt(args[3]);
        System.out.printf("%-8s %-5s %-8s %-14s %10s %10s%n", "tokens", "prec", "backend", "path", "median ms", "GFLOP/s");
        for (int n : lengths) {
            for (String prec : precisions) {
                Precision precision = Precision.valueOf(prec.toUpperCase());
                AttentionProblem problem = AttentionProblem.builder().heads(8).length(n).headDim(64)
                        .precision(precision).build();
                BlockLayout layout = Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=0)")
                        .layout(n, n, 8);
                double flops = TokenMask.of(problem, layout).usefulFlops();
                Random rnd = new Random(n);
                Tensor q = random(rnd, n);
                Tensor k = random(rnd, n);
                Tensor v = random(rnd, n);
                Tensor out = Tensor.zeros(q.layout(), 1, 8, n, 64);
                for (String name : backends) {
                    SparseAttention backend = find(name);
                    if (backend == null || !backend.availability().isAvailable()
                            || backend.capabilities().unsupported(problem, false).isPresent()) {
                        System.out.printf("%-8d %-5s %-8s (not run: %s)%n", n, prec, name,
                                backend == null ? "not found" : backend.availability().isAvailable()
                                        ? backend.capabilities().unsupported(problem, false).get() : backend.availability());
                        continue;
                    }
                    String path = backend instanceof NativeBackend nb ? nb.path(precision).text() : "-";
                    try (AttentionPlan plan = backend.plan(problem, layout)) {
                        for (int w = 0; w < 3; w++) {
                            plan.forward(q, k, v, out, null);
                        }
                        double[] ms = new double[reps];
                        for (int r = 0; r < reps; r++) {
                            long t0 = System.nanoTime();
                            plan.forward(q, k, v, out, null);
                            ms[r] = (System.nanoTime() - t0) / 1e6;
                        }
                        Arrays.sort(ms);
                        double med = ms[reps / 2];
                        System.out.printf("%-8d %-5s %-8s %-14s %10.2f %10.1f%n", n, prec, name, path, med, flops / med / 1e6);
                    }
                }
            }
        }
    }

    private static SparseAttention find(String name) {
        if (name.startsWith("native:")) {
            return NativeBackend.withIsa(Isa.parse(name.substring(7)));
        }
        for (SparseAttention s : ServiceLoader.load(SparseAttention.class)) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }

    private static Tensor random(Random rnd, int n) {
        float[] data = new float[8 * n * 64];
        for (int x = 0; x < data.length; x++) {
            data[x] = (float) rnd.nextGaussian();
        }
        return Tensor.bhsd(data, 1, 8, n, 64);
    }
}
