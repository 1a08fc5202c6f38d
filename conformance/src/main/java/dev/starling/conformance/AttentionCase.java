package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import java.util.Random;

/**
 * One seeded test case: a problem, its pattern and layout, and inputs. The same name and seed
 * always give the same case, so a failure can be replayed from the seed.
 *
 * @param name what the case exercises, e.g. "gqa hq=4 hkv=2"
 * @param seed the seed of the inputs
 * @param problem the problem
 * @param pattern the pattern the layout was materialised from
 * @param layout the layout, built for the problem's lengths and query heads
 * @param q queries
 * @param k keys
 * @param v values
 * @param outLayout memory order of the output {@link #newOutput()} allocates (q, k and v carry their own)
 */
public record AttentionCase(String name, long seed, AttentionProblem problem, PatternSpec pattern, BlockLayout layout,
                            Tensor q, Tensor k, Tensor v, TensorLayout outLayout) {

    /**
     * A case whose output has the queries' layout.
     *
     * @param name what the case exercises
     * @param seed the seed of the inputs
     * @param problem the problem
     * @param pattern the pattern the layout was materialised from
     * @param layout the layout
     * @param q queries
     * @param k keys
     * @param v values
     */
    public AttentionCase(String name, long seed, AttentionProblem problem, PatternSpec pattern, BlockLayout layout,
                         Tensor q, Tensor k, Tensor v) {
        this(name, seed, problem, pattern, layout, q, k, v, q.layout());
    }

    /** How input values are drawn. */
    public enum Values {
        /** Standard normal. */
        NORMAL,
        /** Integers in {@code [-8, 8]}, exact in float32 (for the huge-logit cases). */
        SMALL_INTEGERS
    }

    /**
     * Builds a case with random inputs.
     *
     * @param name what it exercises
     * @param seed seed of the inputs
     * @param problem the problem
     * @param pattern the pattern; materialised with the problem's causal flag
     * @param layout memory order of q, k and v (and of the output the runner allocates)
     * @param values how values are drawn
     * @return the case
     */
    public static AttentionCase random(String name, long seed, AttentionProblem problem, PatternSpec pattern,
                                       TensorLayout layout, Values values) {
        Random rnd = new Random(seed);
        BlockLayout blocks = Starling.layout(problem, pattern);
        Tensor q = fill(Tensor.zeros(layout, problem.batch(), problem.queryHeads(), problem.queryLength(),
                problem.headDim()), rnd, values);
        Tensor k = fill(Tensor.zeros(layout, problem.batch(), problem.kvHeads(), problem.keyLength(),
                problem.headDim()), rnd, values);
        Tensor v = fill(Tensor.zeros(layout, problem.batch(), problem.kvHeads(), problem.keyLength(),
                problem.valueDim()), rnd, values);
        return new AttentionCase(name, seed, problem, pattern, blocks, q, k, v);
    }

    /**
     * Builds a case with random normal inputs, each tensor in its own memory order, over a given layout.
     *
     * @param name what it exercises
     * @param seed seed of the inputs
     * @param problem the problem
     * @param pattern the pattern {@code layout} was materialised from
     * @param layout the layout, built for the problem
     * @param layouts memory order of {@code q}, {@code k}, {@code v} and the output, in that order
     * @return the case
     */
    public static AttentionCase random(String name, long seed, AttentionProblem problem, PatternSpec pattern,
                                       BlockLayout layout, TensorLayout... layouts) {
        if (layouts.length != 4) {
            throw new IllegalArgumentException("need the layouts of q, k, v and out, got " + layouts.length);
        }
        Random rnd = new Random(seed);
        Tensor q = fill(Tensor.zeros(layouts[0], problem.batch(), problem.queryHeads(), problem.queryLength(),
                problem.headDim()), rnd, Values.NORMAL);
        Tensor k = fill(Tensor.zeros(layouts[1], problem.batch(), problem.kvHeads(), problem.keyLength(),
                problem.headDim()), rnd, Values.NORMAL);
        Tensor v = fill(Tensor.zeros(layouts[2], problem.batch(), problem.kvHeads(), problem.keyLength(),
                problem.valueDim()), rnd, Values.NORMAL);
        return new AttentionCase(name, seed, problem, pattern, layout, q, k, v, layouts[3]);
    }

    /**
     * The same problem and layout with other random normal inputs (same tensor layouts), for calls
     * that must not share inputs.
     *
     * @param inputSeed seed of the new inputs
     * @return the case
     */
    public AttentionCase withInputs(long inputSeed) {
        return random(name, inputSeed, problem, pattern, layout, q.layout(), k.layout(), v.layout(), outLayout);
    }

    private static Tensor fill(Tensor t, Random rnd, Values values) {
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = values == Values.NORMAL ? (float) rnd.nextGaussian() : rnd.nextInt(17) - 8;
        }
        return t;
    }

    /** @return a zero output tensor of the right shape, in {@link #outLayout()} */
    public Tensor newOutput() {
        return Tensor.zeros(outLayout, problem.batch(), problem.queryHeads(), problem.queryLength(), problem.valueDim());
    }

    /** @return a new LSE array of the right size */
    public float[] newLse() {
        return new float[problem.lseSize()];
    }

    /** @return the oracle's answer for this case */
    public DenseOracle.Result expected() {
        return DenseOracle.compute(problem, layout, q, k, v);
    }

    @Override
    public String toString() {
        return name + " [case seed " + seed + ", " + pattern.text() + ", " + problem + ", " + layouts() + "]";
    }

    /** @return the tensor layouts: one word when all four agree, else each tensor's */
    public String layouts() {
        if (k.layout() == q.layout() && v.layout() == q.layout() && outLayout == q.layout()) {
            return q.layout().toString();
        }
        return "q " + q.layout() + ", k " + k.layout() + ", v " + v.layout() + ", out " + outLayout;
    }
}
