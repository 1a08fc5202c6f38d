package dev.starling.spark;

import java.io.Serializable;

/**
 * What one shard task did, as it measured it itself (Spark's own metrics of the same task are in
 * {@link JobReport.ShardTask}).
 *
 * @param sequence index of the sequence in the job
 * @param shard the key shard
 * @param firstKey the shard's first key
 * @param keyCount the shard's keys
 * @param backend the backend selected on the executor
 * @param executor the executor's id ({@code driver} in local mode)
 * @param chunks query chunks computed
 * @param rowBlocks (batch, head, query block) partials sent to the shuffle
 * @param partialBytes payload bytes of those partials: rows × (Dv + 1) × 4
 * @param workingSetBytes the most bytes of Starling data the task held at once: its keys and values,
 *                        one chunk's queries, outputs and LSE, and the layouts
 * @param readMillis time reading inputs
 * @param computeMillis time in the backend's {@code forward}
 */
public record ShardTaskStats(int sequence, int shard, int firstKey, int keyCount, String backend, String executor,
                             int chunks, long rowBlocks, long partialBytes, long workingSetBytes, long readMillis,
                             long computeMillis) implements Serializable {
    private static final long serialVersionUID = 1L;
}
