package dev.starling.spark;

import java.util.List;
import java.util.Locale;

/**
 * What a run of {@link ShardedAttention} did: per sequence, the problem and the shuffle volume the
 * layout predicts; per shard task, what it computed and Spark's own metrics of it; the output tasks.
 *
 * <p>The predicted shuffle payload of key shard {@code s} is
 * {@code 4 · B · Σ_h Σ_{qb : row qb of head h has a key block in s} rows(qb) · (Dv + 1)} bytes: the
 * partial output rows ({@code Dv} floats) and LSE (one float) of every query block with any
 * allowed pair in the shard. Spark's {@code shuffleBytesWritten} adds serialisation framing and
 * the effect of compression ({@code spark.shuffle.compress}).
 *
 * @param seconds wall time of the run on the driver, from the first check to the last rename
 * @param sequences one entry per sequence
 * @param shardTasks one entry per (sequence, key shard)
 * @param outputTasks Spark's metrics of the output (merge and write) tasks
 */
public record JobReport(double seconds, List<SequenceReport> sequences, List<ShardTask> shardTasks,
                        List<TaskMetricsListener.TaskRecord> outputTasks) {

    /**
     * One sequence.
     *
     * @param id its id
     * @param problem the problem, as {@code AttentionProblem.toString()} writes it
     * @param shards key shards
     * @param boundaries first key block of each shard after the first
     * @param outputBytes bytes of the output {@code [B, Hq, Nq, Dv]}
     * @param predictedShuffleBytes the layout's shuffle payload, summed over shards
     */
    public record SequenceReport(String id, String problem, int shards, List<Integer> boundaries, long outputBytes,
                                 long predictedShuffleBytes) {
    }

    /**
     * One shard task.
     *
     * @param sequence the sequence's id
     * @param stats what the task measured itself
     * @param predictedShuffleBytes the layout's shuffle payload of this shard
     * @param spark Spark's metrics of the task, or {@code null} if the listener did not see it
     */
    public record ShardTask(String sequence, ShardTaskStats stats, long predictedShuffleBytes,
                            TaskMetricsListener.TaskRecord spark) {
    }

    /** @return the layout's shuffle payload over every shard */
    public long predictedShuffleBytes() {
        return shardTasks.stream().mapToLong(ShardTask::predictedShuffleBytes).sum();
    }

    /** @return bytes the shard tasks wrote to the shuffle, by Spark's metrics */
    public long shuffleBytesWritten() {
        return shardTasks.stream().filter(t -> t.spark() != null).mapToLong(t -> t.spark().shuffleBytesWritten()).sum();
    }

    /** @return bytes the output tasks read from the shuffle, by Spark's metrics */
    public long shuffleBytesRead() {
        return outputTasks.stream().mapToLong(TaskMetricsListener.TaskRecord::shuffleBytesRead).sum();
    }

    /** @return the largest working set of a shard task (its keys, values, one query chunk and the layouts) */
    public long maxWorkingSetBytes() {
        return shardTasks.stream().mapToLong(t -> t.stats().workingSetBytes()).max().orElse(0);
    }

    /** @return the largest peak execution memory Spark reports for any task of the run */
    public long maxPeakExecutionMemory() {
        long shard = shardTasks.stream().filter(t -> t.spark() != null).mapToLong(t -> t.spark().peakExecutionMemory())
                .max().orElse(0);
        long output = outputTasks.stream().mapToLong(TaskMetricsListener.TaskRecord::peakExecutionMemory).max().orElse(0);
        return Math.max(shard, output);
    }

    /** @return the backends the shard tasks ran on, each once */
    public List<String> backends() {
        return shardTasks.stream().map(t -> t.stats().backend()).distinct().toList();
    }

    /** @return a table for people: one line per shard task, then the totals */
    public String format() {
        StringBuilder b = new StringBuilder();
        for (SequenceReport s : sequences) {
            b.append(String.format(Locale.ROOT, "sequence %s: %s, %d shard(s), output %s%n", s.id(), s.problem(),
                    s.shards(), mib(s.outputBytes())));
        }
        b.append(String.format(Locale.ROOT, "%-12s %5s %10s %9s %-9s %9s %10s %10s %8s %10s %10s %8s%n", "sequence",
                "shard", "first key", "keys", "backend", "partials", "predicted", "shuffle", "ratio", "work set",
                "peak exec", "run s"));
        for (ShardTask t : shardTasks) {
            ShardTaskStats st = t.stats();
            long written = t.spark() == null ? -1 : t.spark().shuffleBytesWritten();
            b.append(String.format(Locale.ROOT, "%-12s %5d %,10d %,9d %-9s %,9d %10s %10s %8s %10s %10s %8s%n",
                    t.sequence(), st.shard(), st.firstKey(), st.keyCount(), st.backend(), st.rowBlocks(),
                    mib(t.predictedShuffleBytes()), written < 0 ? "?" : mib(written),
                    written < 0 ? "?" : t.predictedShuffleBytes() == 0 ? "-"
                            : String.format(Locale.ROOT, "%.4f", (double) written / t.predictedShuffleBytes()),
                    mib(st.workingSetBytes()), t.spark() == null ? "?" : mib(t.spark().peakExecutionMemory()),
                    t.spark() == null ? "?" : String.format(Locale.ROOT, "%.1f", t.spark().runMillis() / 1e3)));
        }
        b.append(String.format(Locale.ROOT, "total: %.1f s; shuffle predicted %s, written %s (x%.4f), read %s; "
                        + "largest shard working set %s; %d output task(s), largest peak execution memory %s%n",
                seconds, mib(predictedShuffleBytes()), mib(shuffleBytesWritten()),
                (double) shuffleBytesWritten() / Math.max(1, predictedShuffleBytes()), mib(shuffleBytesRead()),
                mib(maxWorkingSetBytes()), outputTasks.size(), mib(maxPeakExecutionMemory())));
        return b.toString();
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
