package dev.starling.spark;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Starling;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.plan.KeyShards;
import java.io.Serializable;

/**
 * Everything a task needs to know about one sequence, decided once on the driver: the problem's
 * shape, the pattern text, the shard boundaries, and what each shard is expected to send to the
 * shuffle. Small (no tensor, no layout): executors re-derive the layout from the pattern, which is a
 * pure function of the problem (DESIGN section 3), and check it against {@link #shardNnz}.
 */
final class SequencePlan implements Serializable {
    private static final long serialVersionUID = 1L;

    final int index;
    final Sequence sequence;
    final String pattern;
    final boolean causal;
    final Float scale;
    final int batch;
    final int queryHeads;
    final int kvHeads;
    final int queryLength;
    final int keyLength;
    final int headDim;
    final int valueDim;
    /** First key block of each shard after the first. */
    final int[] boundaries;
    /** Allowed blocks of each shard's layout, summed over its head layouts, as the driver drew them. */
    final long[] shardNnz;
    /** (batch, head, query block) triples each shard sends to the shuffle. */
    final long[] shardRowBlocks;
    /** Payload bytes each shard sends: rows × (Dv + 1) floats of every row block it touches. */
    final long[] shardPartialBytes;
    final int queryBlock;
    final int queryBlocks;
    /** Query blocks a task computes at once (0: {@link ShardPartials#defaultChunkBlocks}): bounds the queries and outputs it holds. */
    final int queryBlocksPerChunk;
    /** Output partitions of this sequence and the index of its first among all partitions. */
    final int outputPartitions;
    final int firstOutputPartition;

    SequencePlan(int index, Sequence sequence, String pattern, boolean causal, Float scale, AttentionProblem problem,
                 BlockLayout layout, KeyShards shards, int queryBlocksPerChunk, int outputPartitions,
                 int firstOutputPartition) {
        this.index = index;
        this.sequence = sequence;
        this.pattern = pattern;
        this.causal = causal;
        this.scale = scale;
        this.batch = problem.batch();
        this.queryHeads = problem.queryHeads();
        this.kvHeads = problem.kvHeads();
        this.queryLength = problem.queryLength();
        this.keyLength = problem.keyLength();
        this.headDim = problem.headDim();
        this.valueDim = problem.valueDim();
        int count = shards.count();
        this.boundaries = new int[count - 1];
        for (int s = 1; s < count; s++) {
            boundaries[s - 1] = shards.firstBlock(s);
        }
        this.shardNnz = new long[count];
        this.shardRowBlocks = new long[count];
        this.shardPartialBytes = new long[count];
        this.queryBlock = layout.queryBlock();
        this.queryBlocks = layout.queryBlocks();
        // One pass over the layout: a row's key blocks ascend, so the shards it touches ascend too.
        for (int hl = 0; hl < layout.heads(); hl++) {
            for (int qb = 0; qb < queryBlocks; qb++) {
                int s = 0;
                for (int p = layout.rowBegin(hl, qb); p < layout.rowEnd(hl, qb); p++) {
                    while (layout.keyBlock(hl, p) >= shards.endBlock(s)) {
                        s++;
                    }
                    shardNnz[s]++;
                }
            }
        }
        for (int h = 0; h < queryHeads; h++) {
            for (int qb = 0; qb < queryBlocks; qb++) {
                int last = -1;
                int s = 0;
                for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
                    while (layout.keyBlock(h, p) >= shards.endBlock(s)) {
                        s++;
                    }
                    if (s != last) {
                        shardRowBlocks[s] += batch;
                        shardPartialBytes[s] += 4L * batch * rows(qb) * (valueDim + 1);
                        last = s;
                    }
                }
            }
        }
        this.queryBlocksPerChunk = queryBlocksPerChunk;
        this.outputPartitions = outputPartitions;
        this.firstOutputPartition = firstOutputPartition;
    }

    /** @return the whole problem */
    AttentionProblem problem() {
        AttentionProblem.Builder b = AttentionProblem.builder().batch(batch).heads(queryHeads).kvHeads(kvHeads)
                .queryLength(queryLength).keyLength(keyLength).headDim(headDim).valueDim(valueDim).causal(causal)
                .keyLengths(sequence.keyLengths()).queryLengths(sequence.queryLengths());
        if (scale != null) {
            b.scale(scale);
        }
        return b.build();
    }

    /** @return the whole layout, drawn from the pattern */
    BlockLayout layout(AttentionProblem problem) {
        return Starling.layout(problem, Patterns.parse(pattern));
    }

    /** @return the shards, cut at the driver's boundaries */
    KeyShards shards(AttentionProblem problem, BlockLayout layout) {
        return KeyShards.at(problem, layout, boundaries);
    }

    /** @return number of shards */
    int shardCount() {
        return boundaries.length + 1;
    }

    /** @return query rows in query block {@code qb}: the block size, or fewer in a partial last block */
    int rows(int qb) {
        return Math.min(queryBlock, queryLength - qb * queryBlock);
    }

    /** @return (batch, head, query block) triples of the output */
    long rowBlocks() {
        return (long) batch * queryHeads * queryBlocks;
    }

    /** @return the output's position of a row block in (batch, head, query block) order */
    long flatIndex(int b, int h, int qb) {
        return ((long) b * queryHeads + h) * queryBlocks + qb;
    }

    /** @return bytes of the output {@code [B, Hq, Nq, Dv]} */
    long outputBytes() {
        return 4L * batch * queryHeads * queryLength * valueDim;
    }

    /** @return sum over shards of {@link #shardPartialBytes} */
    long partialBytes() {
        long sum = 0;
        for (long b : shardPartialBytes) {
            sum += b;
        }
        return sum;
    }
}
