import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import java.util.Random;

public class Example {
    public static void main(String[] args) {
        int batch = 1, heads = 8, length = 2048, dim = 64;
        AttentionProblem problem = AttentionProblem.builder()
                .batch(batch).heads(heads).length(length).headDim(dim)
                .build();                                    // scale defaults to 1/sqrt(dim)

        // A projection produces [B, N, H, D] (BSHD); Starling takes that or [B, H, N, D] (BHSD).
        // Every factory takes (batch, heads, length, dim) in that order; the layout names the memory order.
        Random random = new Random(42);
        Tensor q = randomTensor(random, batch, heads, length, dim);
        Tensor k = randomTensor(random, batch, heads, length, dim);
        Tensor v = randomTensor(random, batch, heads, length, dim);
        Tensor out = Tensor.zeros(TensorLayout.BSHD, batch, heads, length, dim);

        PatternSpec pattern = Patterns.parse("bigbird(block=64, window=3, global=2, random=3, seed=0)");
        BlockLayout layout = Starling.layout(problem, pattern);   // same layout on every backend
        SparseAttention backend = Starling.backend(problem);      // -Dstarling.backend=NAME to choose
        try (AttentionPlan plan = backend.plan(problem, layout)) {
            plan.forward(q, k, v, out);                           // q, k, v are never modified
        }
        System.out.printf("backend %s: out[0, 0, 0, 0] = %.4f%n", backend.name(), out.get(0, 0, 0, 0));
    }

    static Tensor randomTensor(Random random, int batch, int heads, int length, int dim) {
        float[] data = new float[batch * length * heads * dim];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) random.nextGaussian();
        }
        return Tensor.of(TensorLayout.BSHD, data, batch, heads, length, dim);
    }
}
