package dev.starling.api.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Every allowed pair of the whole is allowed in exactly one shard, at the shard's local key, and nowhere else. */
class KeyShardsTest {

    @Test
    void shardsPartitionTheAllowedPairsExactly() {
        Random random = new Random(4);
        String[] patterns = {"bigbird(block=4, window=3, global=2, random=2)", "causal(window(block=5))", "dense(block=3)"};
        for (int trial = 0; trial < 12; trial++) {
            boolean causal = trial % 2 == 1;
            int nq = 20 + random.nextInt(30);
            int nk = 20 + random.nextInt(40);
            AttentionProblem p = AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(nq).keyLength(nk)
                    .headDim(2).causal(causal).keyLengths(nk, 1 + random.nextInt(nk)).queryLengths(nq, random.nextInt(nq + 1))
                    .build();
            BlockLayout layout = Patterns.parse(patterns[trial % 3]).layout(nq, nk, 4, causal);
            int shardCount = 1 + random.nextInt(Math.min(4, layout.keyBlocks()));
            KeyShards shards = KeyShards.balanced(p, layout, shardCount);
            assertEquals(shardCount, shards.count());
            TokenMask whole = TokenMask.of(p, layout);
            TokenMask[] parts = new TokenMask[shards.count()];
            for (int s = 0; s < shards.count(); s++) {
                parts[s] = TokenMask.of(shards.problem(s), shards.layout(s));
                assertTrue(shards.keyCount(s) > 0);
            }
            long pairs = 0;
            for (int b = 0; b < 2; b++) {
                for (int h = 0; h < 4; h++) {
                    for (int i = 0; i < nq; i++) {
                        for (int j = 0; j < nk; j++) {
                            int owner = 0;
                            while (owner + 1 < shards.count() && j >= shards.firstKey(owner + 1)) {
                                owner++;
                            }
                            boolean inShard = parts[owner].allowed(b, h, i, j - shards.firstKey(owner));
                            assertEquals(whole.allowed(b, h, i, j), inShard, "trial " + trial + " (" + b + h + i + j + ")");
                            pairs += inShard ? 1 : 0;
                        }
                    }
                }
            }
            long sum = 0;
            for (TokenMask part : parts) {
                sum += part.allowedPairs();
            }
            assertEquals(pairs, sum);
            assertEquals(whole.allowedPairs(), sum);
        }
    }

    @Test
    void slicesHoldTheShardsKeysAndBoundariesAreChecked() {
        AttentionProblem p = AttentionProblem.builder().heads(2).length(10).headDim(3).build();
        BlockLayout layout = Patterns.parse("dense(block=4)").layout(10, 10, 2);
        KeyShards shards = KeyShards.at(p, layout, 2);
        assertEquals(8, shards.keyCount(0));
        assertEquals(2, shards.keyCount(1));
        Tensor k = Tensor.zeros(TensorLayout.BSHD, 1, 2, 10, 3);
        for (int i = 0; i < k.data().length; i++) {
            k.data()[i] = i;
        }
        Tensor slice = shards.slice(k, 1);
        assertEquals(k.get(0, 1, 9, 2), slice.get(0, 1, 1, 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KeyShards.at(p, layout, 3));
        assertTrue(e.getMessage().contains("strictly ascending"), e.getMessage());
    }
}
