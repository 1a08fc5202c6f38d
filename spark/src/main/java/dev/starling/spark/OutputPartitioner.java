package dev.starling.spark;

import java.util.List;
import org.apache.spark.Partitioner;

/**
 * Sends each partial to the output partition that writes its rows. Sequence {@code i} owns
 * partitions {@code [first_i, first_i + P_i)}; partition {@code first_i + j} writes the contiguous
 * range {@code [ceil(j·n/P_i), ceil((j+1)·n/P_i))} of the sequence's {@code n} row blocks in
 * output-file order (batch, head, query block), so each partition's part is one contiguous byte
 * range of the output file and the parts concatenate into it.
 */
final class OutputPartitioner extends Partitioner {
    private static final long serialVersionUID = 1L;

    private final int[] first;
    private final int[] parts;
    private final long[] rowBlocks;
    private final int[] heads;
    private final int[] queryBlocks;
    private final int total;

    OutputPartitioner(List<SequencePlan> plans) {
        int n = plans.size();
        first = new int[n];
        parts = new int[n];
        rowBlocks = new long[n];
        heads = new int[n];
        queryBlocks = new int[n];
        int sum = 0;
        for (SequencePlan p : plans) {
            first[p.index] = p.firstOutputPartition;
            parts[p.index] = p.outputPartitions;
            rowBlocks[p.index] = p.rowBlocks();
            heads[p.index] = p.queryHeads;
            queryBlocks[p.index] = p.queryBlocks;
            sum += p.outputPartitions;
        }
        total = sum;
    }

    @Override
    public int numPartitions() {
        return total;
    }

    @Override
    public int getPartition(Object key) {
        RowBlockKey k = (RowBlockKey) key;
        long flat = ((long) k.batch * heads[k.sequence] + k.head) * queryBlocks[k.sequence] + k.queryBlock;
        return first[k.sequence] + (int) (flat * parts[k.sequence] / rowBlocks[k.sequence]);
    }

    /** @return the sequence that partition {@code p} belongs to */
    int sequenceOf(int p) {
        for (int s = 0; s < first.length; s++) {
            if (p >= first[s] && p < first[s] + parts[s]) {
                return s;
            }
        }
        throw new IllegalArgumentException("no sequence owns partition " + p);
    }

    /** @return the first row block (output order) that partition {@code p} writes */
    long rangeBegin(int p) {
        int s = sequenceOf(p);
        return ceilDiv((long) (p - first[s]) * rowBlocks[s], parts[s]);
    }

    /** @return one past the last row block that partition {@code p} writes */
    long rangeEnd(int p) {
        int s = sequenceOf(p);
        return ceilDiv((long) (p - first[s] + 1) * rowBlocks[s], parts[s]);
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof OutputPartitioner p && java.util.Arrays.equals(p.first, first)
                && java.util.Arrays.equals(p.parts, parts) && java.util.Arrays.equals(p.rowBlocks, rowBlocks)
                && java.util.Arrays.equals(p.heads, heads) && java.util.Arrays.equals(p.queryBlocks, queryBlocks);
    }

    @Override
    public int hashCode() {
        return java.util.Arrays.hashCode(first) * 31 + java.util.Arrays.hashCode(rowBlocks);
    }
}
