package dev.starling.bench.jmh;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.TokenMask;
import dev.starling.backend.vector.kernel.TileKernel;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The vector backend's micro-kernel alone, next to ND4J's sgemm on the same single thread, so a
 * regression in the kernel shows as a number. Every score is <b>GFLOP/s on one core</b>: each
 * benchmark declares its floating-point operations per invocation
 * ({@link OperationsPerInvocation}) and the mode is throughput per nanosecond, so "ops/ns" reads
 * as GFLOP/s.
 *
 * <ul>
 *   <li>{@link #tileKernel}: one 64-row query block against {@value #KEY_BLOCKS} key blocks of 64
 *       keys, {@code D = Dv = 64}, through {@link TileKernel}'s public API: {@code begin}, one
 *       {@code block} per key block (scores, online softmax, {@code O += P·V}), {@code finish}.
 *       Dense, no causal rule, no tails: every block is uniform. Useful work (DESIGN section 7)
 *       {@code 2·(D + Dv)·64·64} per key block, {@value #KERNEL_FLOPS} flops per invocation.
 *       The softmax's {@code exp} and the begin/finish transposes are not counted.</li>
 *   <li>{@link #sgemm64}: the same flop count as ND4J products of the kernel's shapes: 32
 *       {@code 64×64×64} sgemms ({@code 2·64³} flops each, one for {@code Q·Kᵀ} and one for
 *       {@code P·V} per key block), into preallocated outputs.</li>
 *   <li>{@link #sgemm512}: one {@code 512×512×512} sgemm ({@value #SGEMM512_FLOPS} flops): what
 *       OpenBLAS does when the product is large enough to run near peak.</li>
 * </ul>
 * One JMH thread; ND4J and OpenBLAS are held to one thread in setup
 * ({@code Nd4j.getEnvironment().setMaxThreads/setMaxMasterThreads(1)},
 * {@code Nd4j.factory().blas().setMaxThreads(1)}, which calls {@code openblas_set_num_threads};
 * setup prints the thread counts it got). Each benchmark runs in its own fork, and only the kernel's fork loads the Vector API classes (the fork adds
 * {@code --add-modules jdk.incubator.vector}).
 *
 * <pre>
 * mvn -B -ntp -o -Pbenchmarks -pl bench -am -DskipTests package
 * java -jar bench/target/benchmarks.jar TileKernelBenchmark -f 1 -wi 3 -i 5
 * </pre>
 * See docs/benchmarks.md ("Micro-kernel") for what a regression looks like.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Threads(1)
public class TileKernelBenchmark {
    /** Rows of the query block and keys of a key block. */
    static final int BLOCK = 64;
    /** Head dim and value dim. */
    static final int DIM = 64;
    /** Key blocks folded between one {@code begin} and its {@code finish}. */
    static final int KEY_BLOCKS = 16;
    /** {@code 2·(D + Dv)·64·64·KEY_BLOCKS}: useful flops of one kernel invocation. */
    static final int KERNEL_FLOPS = 2 * (DIM + DIM) * BLOCK * BLOCK * KEY_BLOCKS;
    /** {@code 64×64×64} products with {@link #KERNEL_FLOPS} flops in all. */
    static final int SGEMM64_PER_INVOCATION = KERNEL_FLOPS / (2 * BLOCK * BLOCK * DIM);
    /** Side of the large product. */
    static final int LARGE = 512;
    /** {@code 2·512³}. */
    static final int SGEMM512_FLOPS = 2 * LARGE * LARGE * LARGE;

    /** The kernel, one query block's inputs and its mask: a dense layout of 64-blocks. */
    @State(Scope.Thread)
    public static class KernelState {
        TileKernel kernel;
        TokenMask mask;
        Tensor q;
        Tensor k;
        Tensor v;
        Tensor out;
        float scale;

        /** Builds the inputs (seeded normal) and the kernel's scratch. */
        @Setup(Level.Trial)
        public void setUp() {
            int keys = BLOCK * KEY_BLOCKS;
            AttentionProblem problem = AttentionProblem.builder().heads(1).queryLength(BLOCK).keyLength(keys)
                    .headDim(DIM).build();
            BlockLayout layout = Patterns.parse("dense(block=" + BLOCK + ")").layout(BLOCK, keys, 1, false);
            mask = TokenMask.of(problem, layout);
            Random random = new Random(42);
            q = Tensor.bhsd(normal(random, BLOCK * DIM), 1, 1, BLOCK, DIM);
            k = Tensor.bhsd(normal(random, keys * DIM), 1, 1, keys, DIM);
            v = Tensor.bhsd(normal(random, keys * DIM), 1, 1, keys, DIM);
            out = Tensor.zeros(TensorLayout.BHSD, 1, 1, BLOCK, DIM);
            scale = problem.scale();
            kernel = new TileKernel(DIM, DIM, BLOCK, BLOCK);
            System.err.println("[starling] " + TileKernel.describe());
        }
    }

    /** ND4J operands of both products, outputs preallocated; ND4J and OpenBLAS on one thread. */
    @State(Scope.Thread)
    public static class GemmState {
        INDArray a64;
        INDArray b64;
        INDArray c64;
        INDArray a512;
        INDArray b512;
        INDArray c512;

        /** Holds ND4J to one thread and builds the operands. */
        @Setup(Level.Trial)
        public void setUp() {
            Nd4j.getEnvironment().setMaxThreads(1);
            Nd4j.getEnvironment().setMaxMasterThreads(1);
            Nd4j.factory().blas().setMaxThreads(1);
            Nd4j.getRandom().setSeed(42);
            a64 = Nd4j.randn(BLOCK, DIM);
            b64 = Nd4j.randn(DIM, BLOCK);
            c64 = Nd4j.zeros(BLOCK, BLOCK);
            a512 = Nd4j.randn(LARGE, LARGE);
            b512 = Nd4j.randn(LARGE, LARGE);
            c512 = Nd4j.zeros(LARGE, LARGE);
            System.err.println("[starling] ND4J BLAS " + Nd4j.factory().blas().getBlasVendor() + ", BLAS threads "
                    + Nd4j.factory().blas().getMaxThreads() + ", ND4J threads " + Nd4j.getEnvironment().maxThreads());
        }

        /** Frees the operands. */
        @TearDown(Level.Trial)
        public void tearDown() {
            for (INDArray x : new INDArray[] {a64, b64, c64, a512, b512, c512}) {
                x.close();
            }
        }
    }

    private static float[] normal(Random random, int n) {
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            d[i] = (float) random.nextGaussian();
        }
        return d;
    }

    /**
     * One query block through {@link TileKernel}: begin, {@value #KEY_BLOCKS} fused blocks, finish.
     *
     * @param s the kernel and inputs
     * @return the output, so the work cannot be eliminated
     */
    @Benchmark
    @OperationsPerInvocation(KERNEL_FLOPS)
    public Tensor tileKernel(KernelState s) {
        s.kernel.begin(s.q, 0, 0, 0, BLOCK, s.scale);
        for (int kb = 0; kb < KEY_BLOCKS; kb++) {
            s.kernel.block(s.mask, 0, 0, kb, 0, s.k, s.v, 0, 0f);
        }
        s.kernel.finish(s.out, 0, 0, 0, BLOCK, null, 0);
        return s.out;
    }

    /**
     * ND4J {@code C = A·B}, {@code 64×64×64}, {@link #SGEMM64_PER_INVOCATION} times: the kernel's flops.
     *
     * @param s the operands
     * @return the output
     */
    @Benchmark
    @OperationsPerInvocation(KERNEL_FLOPS)
    public INDArray sgemm64(GemmState s) {
        for (int r = 0; r < SGEMM64_PER_INVOCATION; r++) {
            Nd4j.gemm(s.a64, s.b64, s.c64, false, false, 1.0, 0.0);
        }
        return s.c64;
    }

    /**
     * ND4J {@code C = A·B}, {@code 512×512×512}.
     *
     * @param s the operands
     * @return the output
     */
    @Benchmark
    @OperationsPerInvocation(SGEMM512_FLOPS)
    public INDArray sgemm512(GemmState s) {
        Nd4j.gemm(s.a512, s.b512, s.c512, false, false, 1.0, 0.0);
        return s.c512;
    }
}
