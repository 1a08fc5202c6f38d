package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import org.junit.jupiter.api.Test;

/** Attention computed shard by shard on the shards' keys alone, then merged, equals the whole. */
class ReferenceKeyShardsTest {

    @Test
    void shardedThenMergedEqualsTheWhole() {
        AttentionProblem[] problems = {
            AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(150).keyLength(230).headDim(16).valueDim(8)
                    .keyLengths(230, 170).build(),
            AttentionProblem.builder().heads(2).length(300).headDim(8).causal(true).queryLengths(250).build(),
        };
        for (int c = 0; c < problems.length; c++) {
            AttentionProblem p = problems[c];
            AttentionCase whole = AttentionCase.random("shards " + c, 40 + c, p,
                    Patterns.parse("bigbird(block=16, window=3, global=2, random=2)"), TensorLayout.BSHD,
                    AttentionCase.Values.NORMAL);
            for (int count = 1; count <= 4; count++) {
                KeyShards shards = KeyShards.balanced(p, whole.layout(), count);
                Tensor merged = null;
                float[] mergedLse = null;
                for (int s = 0; s < shards.count(); s++) {
                    AttentionProblem sp = shards.problem(s);
                    Tensor out = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), p.queryLength(), p.valueDim());
                    float[] lse = new float[p.lseSize()];
                    try (AttentionPlan plan = new ReferenceBackend().plan(sp, shards.layout(s))) {
                        plan.forward(whole.q(), shards.slice(whole.k(), s), shards.slice(whole.v(), s), out, lse);
                    }
                    if (merged == null) {
                        merged = out;
                        mergedLse = lse;
                    } else {
                        OnlineSoftmax.merge(merged, mergedLse, out, lse, merged, mergedLse);
                    }
                }
                Comparison.Outcome o = Comparison.compare(p, DenseOracle.compute(p, whole.layout(), whole.q(), whole.k(),
                        whole.v()), merged, mergedLse, Tolerance.FP32);
                assertTrue(o.ok(), count + " shards: " + o.message());
            }
        }
    }
}
