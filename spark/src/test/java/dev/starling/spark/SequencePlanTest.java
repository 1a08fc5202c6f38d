package dev.starling.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The driver's one-pass shuffle prediction against the shards' own layouts, counted one by one. */
class SequencePlanTest {

    @Test
    void predictionCountsEveryRowBlockThatReadsAShard() {
        Random rnd = new Random(4);
        String[] patterns = {"bigbird(block=16, window=3, global=2, random=3, seed=2)", "window(block=32, blocks=3)",
            "union(strided(block=16, stride=3), random(block=16, blocks=2))", "dense(block=64)"};
        for (int c = 0; c < 40; c++) {
            String pattern = patterns[c % patterns.length];
            int nq = 20 + rnd.nextInt(400);
            int nk = 20 + rnd.nextInt(400);
            int kv = 1 + rnd.nextInt(2);
            AttentionProblem p = AttentionProblem.builder().batch(1 + rnd.nextInt(2)).heads(kv * (1 + rnd.nextInt(2)))
                    .kvHeads(kv).queryLength(nq).keyLength(nk).headDim(4).valueDim(1 + rnd.nextInt(9))
                    .causal(rnd.nextBoolean()).build();
            BlockLayout layout = Starling.layout(p, Patterns.parse(pattern));
            KeyShards shards = KeyShards.balanced(p, layout, 1 + rnd.nextInt(layout.keyBlocks()));
            SequencePlan plan = new SequencePlan(0, Sequence.of("x", "q", "k", "v", "o"), pattern, p.causal(), null, p,
                    layout, shards, 0, 1, 0);
            long[] nnz = new long[shards.count()];
            long[] rowBlocks = new long[shards.count()];
            long[] bytes = new long[shards.count()];
            for (int s = 0; s < shards.count(); s++) {
                BlockLayout l = shards.layout(s);
                for (int hl = 0; hl < l.heads(); hl++) {
                    nnz[s] += l.nnz(hl);
                }
                for (int h = 0; h < p.queryHeads(); h++) {
                    for (int qb = 0; qb < l.queryBlocks(); qb++) {
                        if (l.rowSize(h, qb) > 0) {
                            int rows = Math.min(l.queryBlock(), nq - qb * l.queryBlock());
                            rowBlocks[s] += p.batch();
                            bytes[s] += 4L * p.batch() * rows * (p.valueDim() + 1);
                        }
                    }
                }
            }
            String what = "case " + c + ": " + p + ", " + pattern + ", " + shards.count() + " shards";
            assertArrayEquals(nnz, plan.shardNnz, what);
            assertArrayEquals(rowBlocks, plan.shardRowBlocks, what);
            assertArrayEquals(bytes, plan.shardPartialBytes, what);
            assertEquals(plan.rowBlocks(), (long) p.batch() * p.queryHeads() * layout.queryBlocks());
        }
    }
}
