package dev.starling.bench.jmh;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.selection.BackendSelector;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One {@code forward} of block-sparse attention per invocation, backend × pattern × length.
 * Inputs, layout and plan are built in setup, outside the measurement. Each parameter set runs in
 * its own fork, so backends do not share a JIT profile; forks add {@code jdk.incubator.vector}, so
 * {@code -p backend=vector} runs the vector backend. An unavailable backend fails its setup with
 * the backend's reason, and JMH reports no number for it.
 *
 * <pre>
 * mvn -B -ntp -Pbenchmarks -DskipTests package
 * java -jar bench/target/benchmarks.jar AttentionBenchmark -p backend=reference,nd4j -p length=4096,16384
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 5, time = 5)
public class AttentionBenchmark {

    /** Backend name as in {@code starling backends} ({@code vector} too). */
    @Param({"reference", "nd4j"})
    public String backend;

    /** Pattern text. */
    @Param({"bigbird(block=64, window=3, global=2, random=3, seed=0)"})
    public String pattern;

    /** Sequence length (queries and keys). */
    @Param({"4096", "16384"})
    public int length;

    /** Query (and key/value) heads. */
    @Param({"8"})
    public int heads;

    /** Head dim and value dim. */
    @Param({"64"})
    public int headDim;

    private AttentionPlan plan;
    private Tensor q;
    private Tensor k;
    private Tensor v;
    private Tensor out;

    /** Builds the inputs and the plan; throws with the reason when the backend is unavailable. */
    @Setup(Level.Trial)
    public void setUp() {
        AttentionProblem problem = AttentionProblem.builder().heads(heads).length(length).headDim(headDim).build();
        SparseAttention chosen = BackendSelector.discover().byName(backend);
        BlockLayout layout = Starling.layout(problem, Patterns.parse(pattern));
        Random random = new Random(42);
        q = random(random);
        k = random(random);
        v = random(random);
        out = Tensor.zeros(TensorLayout.BHSD, 1, heads, length, headDim);
        plan = chosen.plan(problem, layout);
    }

    private Tensor random(Random random) {
        float[] d = new float[heads * length * headDim];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) random.nextGaussian();
        }
        return Tensor.bhsd(d, 1, heads, length, headDim);
    }

    /** @return the output, so the work cannot be eliminated */
    @Benchmark
    public Tensor forward() {
        plan.forward(q, k, v, out);
        return out;
    }

    /** Releases the plan. */
    @TearDown(Level.Trial)
    public void tearDown() {
        plan.close();
    }
}
