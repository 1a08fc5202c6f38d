package dev.starling.spark;

import java.io.Serializable;

/**
 * The shuffle key of a partial result: the rows of one query block of one (sequence, batch, query
 * head), from one key shard. Ordered by (sequence, batch, head, query block) — the order of the
 * output file — then by shard, so the partials of one row block meet in a fixed order and the
 * merged result does not depend on the order tasks finish in.
 */
final class RowBlockKey implements Serializable, Comparable<RowBlockKey> {
    private static final long serialVersionUID = 1L;

    final int sequence;
    final int batch;
    final int head;
    final int queryBlock;
    final int shard;

    RowBlockKey(int sequence, int batch, int head, int queryBlock, int shard) {
        this.sequence = sequence;
        this.batch = batch;
        this.head = head;
        this.queryBlock = queryBlock;
        this.shard = shard;
    }

    @Override
    public int compareTo(RowBlockKey o) {
        int c = Integer.compare(sequence, o.sequence);
        if (c == 0) {
            c = Integer.compare(batch, o.batch);
        }
        if (c == 0) {
            c = Integer.compare(head, o.head);
        }
        if (c == 0) {
            c = Integer.compare(queryBlock, o.queryBlock);
        }
        return c != 0 ? c : Integer.compare(shard, o.shard);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RowBlockKey k && k.sequence == sequence && k.batch == batch && k.head == head
                && k.queryBlock == queryBlock && k.shard == shard;
    }

    @Override
    public int hashCode() {
        return (((sequence * 31 + batch) * 31 + head) * 31 + queryBlock) * 31 + shard;
    }

    @Override
    public String toString() {
        return "(sequence " + sequence + ", batch " + batch + ", head " + head + ", query block " + queryBlock
                + ", shard " + shard + ")";
    }
}
