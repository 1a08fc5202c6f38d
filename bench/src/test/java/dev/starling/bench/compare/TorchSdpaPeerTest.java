package dev.starling.bench.compare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.GradientComparison;
import dev.starling.conformance.GradientOracle;
import dev.starling.conformance.Tolerance;
import java.util.Random;
import org.bytedeco.openblas.global.openblas_full;
import org.junit.jupiter.api.Test;

/** The torch-sdpa dense peer against the float64 oracles: output, and gradients through libtorch autograd. */
class TorchSdpaPeerTest {

    private static Tensor random(Random random, int heads, int n, int d, Precision precision) {
        float[] x = new float[heads * n * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = CompareRun.elementType(precision).quantize((float) random.nextGaussian());
        }
        return Tensor.bhsd(x, 1, heads, n, d);
    }

    private static void check(AttentionProblem p, long seed) {
        Precision pr = p.precision();
        Random random = new Random(seed);
        Tensor q = random(random, p.queryHeads(), p.queryLength(), p.headDim(), pr);
        Tensor k = random(random, p.kvHeads(), p.keyLength(), p.headDim(), pr);
        Tensor v = random(random, p.kvHeads(), p.keyLength(), p.valueDim(), pr);
        Tensor dOut = random(random, p.queryHeads(), p.queryLength(), p.valueDim(), pr);
        BlockLayout dense = Starling.layout(p, Patterns.parse("dense(block=32)"));
        TorchSdpaPeer peer = new TorchSdpaPeer();
        assertNull(peer.unavailableReason(), "libtorch loads from the JavaCPP preset");
        assertNull(peer.noBackward());
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, p.queryHeads(), p.queryLength(), p.valueDim());
        Tensor outOfStep = Tensor.zeros(TensorLayout.BHSD, 1, p.queryHeads(), p.queryLength(), p.valueDim());
        Tensor dq = Tensor.zeros(TensorLayout.BHSD, 1, p.queryHeads(), p.queryLength(), p.headDim());
        Tensor dk = Tensor.zeros(TensorLayout.BHSD, 1, p.kvHeads(), p.keyLength(), p.headDim());
        Tensor dv = Tensor.zeros(TensorLayout.BHSD, 1, p.kvHeads(), p.keyLength(), p.valueDim());
        int threads = openblas_full.openblas_get_num_threads();
        try {
            peer.prepare(p, q, k, v);
            peer.run(out);
            peer.runBackward(outOfStep, dOut, dq, dk, dv);
            // Twice: gradients must not accumulate across calls.
            peer.runBackward(outOfStep, dOut, dq, dk, dv);
        } finally {
            peer.close();
        }
        assertEquals(threads, openblas_full.openblas_get_num_threads(), "OpenBLAS's thread count is restored");
        DenseOracle.Result want = DenseOracle.compute(p, dense, q, k, v);
        Comparison.Outcome o = Comparison.compare(p, want, out, null, Tolerance.of(pr));
        assertTrue(o.ok(), "forward: " + o.message());
        o = Comparison.compare(p, want, outOfStep, null, Tolerance.of(pr));
        assertTrue(o.ok(), "output of forward + backward: " + o.message());
        GradientOracle.Result g = GradientOracle.compute(p, dense, q, k, v, dOut);
        o = GradientComparison.compare(p, dense, g, dq, dk, dv, Tolerance.gradient(pr));
        assertTrue(o.ok(), "gradients: " + o.message());
    }

    @Test
    void forwardAndGradientsMatchTheFloat64Oracles() {
        check(AttentionProblem.builder().heads(2).length(200).headDim(16).build(), 11);
    }

    /** Issue 25: the bf16 peer (at::kBFloat16 tensors, output widened back) within the kit's bf16 rows, gradients too. */
    @Test
    void inBf16WithinTheKitsBf16Rows() {
        check(AttentionProblem.builder().heads(2).length(200).headDim(16).precision(Precision.BF16).build(), 13);
        check(AttentionProblem.builder().heads(4).kvHeads(2).length(96).headDim(8).precision(Precision.BF16).build(), 14);
    }

    @Test
    void groupedQueryHeadsAndAnotherScale() {
        check(AttentionProblem.builder().heads(4).kvHeads(2).length(96).headDim(8).scale(0.2f).build(), 12);
    }
}
