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
 */
public record AttentionCase(String name, long seed, AttentionProblem problem, PatternSpec pattern, BlockLayout layout,
                            Tensor q, Tensor k, Tensor v) {

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

    private static Tensor fill(Tensor t, Random rnd, Values values) {
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = values == Values.NORMAL ? (float) rnd.nextGaussian() : rnd.nextInt(17) - 8;
        }
        return t;
    }

    /** @return a zero output tensor of the right shape, in the inputs' layout */
    public Tensor newOutput() {
        return Tensor.zeros(q.layout(), problem.batch(), problem.queryHeads(), problem.queryLength(), problem.valueDim());
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
        return name + " [seed " + seed + ", " + pattern.text() + ", " + problem + ", " + q.layout() + "]";
    }
}
