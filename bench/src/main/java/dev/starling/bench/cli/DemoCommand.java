package dev.starling.bench.cli;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BigBirdPattern;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.selection.BackendSelector;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.Tolerance;
import java.io.PrintWriter;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code starling demo} (and {@code starling} alone): backends, a BigBird layout, a checked run and a timed run. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "A short tour on built-in defaults: backends, a BigBird layout, a run checked against dense attention.")
final class DemoCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        return run(spec.commandLine().getOut());
    }

    int run(PrintWriter out) {
        out.println("== starling backends");
        BackendsCommand.print(out);

        PatternSpec bigbird = BigBirdPattern.defaults();
        out.println();
        out.println("== starling pattern '" + bigbird.text() + "' --seq 1024 --show");
        BlockLayout small = bigbird.layout(1024, 1024, 1);
        PatternCommand.describe(out, bigbird, small, 1, 0);
        PatternCommand.draw(out, small);

        out.println();
        out.println("== checked run: BigBird, batch 1, 4 heads, 512 tokens, head dim 64, against float64 dense attention");
        AttentionProblem checkProblem = AttentionProblem.builder().heads(4).length(512).headDim(64).build();
        AttentionCase c = AttentionCase.random("demo", 7, checkProblem, bigbird, TensorLayout.BHSD, AttentionCase.Values.NORMAL);
        SparseAttention backend = BackendSelector.discover().select(checkProblem, true);
        Tensor checkOut = c.newOutput();
        float[] lse = c.newLse();
        try (AttentionPlan plan = backend.plan(checkProblem, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), checkOut, lse);
        }
        Comparison.Outcome outcome = Comparison.compare(checkProblem, c.expected(), checkOut, lse, Tolerance.FP32);
        out.printf("backend %s: %s (%s)%n", backend.name(), outcome.ok() ? "agrees" : "DISAGREES", outcome.message());

        out.println();
        int n = 16_384;
        out.printf("== timed run: BigBird, batch 1, 8 heads, %d tokens, head dim 64, random inputs%n", n);
        AttentionProblem p = AttentionProblem.builder().heads(8).length(n).headDim(64).build();
        BlockLayout layout = Starling.layout(p, bigbird);
        Random rnd = new Random(1);
        Tensor q = random(rnd, 8, n);
        Tensor k = random(rnd, 8, n);
        Tensor v = random(rnd, 8, n);
        Tensor o = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        SparseAttention timedBackend = BackendSelector.discover().select(p, false);
        try (AttentionPlan plan = timedBackend.plan(p, layout)) {
            plan.forward(q, k, v, o);
            long best = Long.MAX_VALUE;
            for (int rep = 0; rep < 3; rep++) {
                long t0 = System.nanoTime();
                plan.forward(q, k, v, o);
                best = Math.min(best, System.nanoTime() - t0);
            }
            TokenMask mask = TokenMask.of(p, layout);
            long pairs = mask.allowedPairs();
            double flops = mask.usefulFlops();
            out.printf("backend %s: best of 3 %.1f ms, %.2f useful GFLOP/s, %.1f%% of dense pairs%n", timedBackend.name(),
                    best / 1e6, flops / best, 100.0 * pairs / (8.0 * n * n));
        }
        out.println();
        out.println("More: starling --help, starling pattern --help, starling run --help");
        out.flush();
        return outcome.ok() ? 0 : StarlingCli.CHECK_FAILED;
    }

    private static Tensor random(Random rnd, int heads, int n) {
        float[] d = new float[heads * n * 64];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) rnd.nextGaussian();
        }
        return Tensor.bhsd(d, 1, heads, n, 64);
    }
}
