package dev.starling.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * Collects Spark's own metrics of every successful task of the jobs of one job group: run time,
 * peak execution memory, shuffle bytes and records written and read. Add it with
 * {@code sparkContext.addSparkListener}, run the jobs under {@code setJobGroup(group, …)}, then
 * {@link #awaitJobs} before reading {@link #tasks()} (listener events arrive asynchronously).
 */
public final class TaskMetricsListener extends SparkListener {
    /** The property Spark sets on every job of a job group ({@code SparkContext.SPARK_JOB_GROUP_ID}). */
    private static final String JOB_GROUP = "spark.jobGroup.id";

    /**
     * Spark's metrics of one successful task.
     *
     * @param stage the stage id
     * @param type {@code ShuffleMapTask} or {@code ResultTask}
     * @param index the task's partition index within its stage
     * @param runMillis executor run time
     * @param gcMillis JVM garbage collection time during the task
     * @param peakExecutionMemory peak bytes of Spark-managed execution memory (shuffle, sort and aggregation buffers)
     * @param shuffleBytesWritten bytes written to the shuffle (after serialisation and compression)
     * @param shuffleRecordsWritten records written to the shuffle
     * @param shuffleBytesRead bytes read from the shuffle, local and remote
     * @param shuffleRecordsRead records read from the shuffle
     */
    public record TaskRecord(int stage, String type, int index, long runMillis, long gcMillis, long peakExecutionMemory,
                             long shuffleBytesWritten, long shuffleRecordsWritten, long shuffleBytesRead,
                             long shuffleRecordsRead) {
    }

    private final String group;
    private final Set<Integer> jobs = ConcurrentHashMap.newKeySet();
    private final Set<Integer> endedJobs = ConcurrentHashMap.newKeySet();
    private final Map<Integer, Boolean> stages = new ConcurrentHashMap<>();
    private final List<TaskRecord> tasks = new ArrayList<>();

    /** @param group the job group whose tasks are collected */
    public TaskMetricsListener(String group) {
        this.group = group;
    }

    @Override
    public void onJobStart(SparkListenerJobStart jobStart) {
        if (jobStart.properties() != null && group.equals(jobStart.properties().getProperty(JOB_GROUP))) {
            jobs.add(jobStart.jobId());
            for (Object stage : scala.jdk.javaapi.CollectionConverters.asJava(jobStart.stageIds())) {
                stages.put((Integer) stage, Boolean.TRUE);
            }
        }
    }

    @Override
    public synchronized void onJobEnd(SparkListenerJobEnd jobEnd) {
        if (jobs.contains(jobEnd.jobId())) {
            endedJobs.add(jobEnd.jobId());
            notifyAll();
        }
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd taskEnd) {
        TaskMetrics m = taskEnd.taskMetrics();
        if (!stages.containsKey(taskEnd.stageId()) || m == null || !taskEnd.taskInfo().successful()) {
            return;
        }
        tasks.add(new TaskRecord(taskEnd.stageId(), taskEnd.taskType(), taskEnd.taskInfo().index(), m.executorRunTime(),
                m.jvmGCTime(), m.peakExecutionMemory(), m.shuffleWriteMetrics().bytesWritten(),
                m.shuffleWriteMetrics().recordsWritten(), m.shuffleReadMetrics().totalBytesRead(),
                m.shuffleReadMetrics().recordsRead()));
    }

    /**
     * Waits until at least {@code count} jobs of the group have ended and every job of the group
     * that started has ended, as seen by this listener.
     *
     * @param count how many jobs the caller ran in the group
     * @param timeoutMillis the longest wait
     * @return whether they all ended in time
     * @throws InterruptedException if interrupted
     */
    public synchronized boolean awaitJobs(int count, long timeoutMillis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (endedJobs.size() < count || !endedJobs.containsAll(jobs)) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return false;
            }
            wait(left);
        }
        return true;
    }

    /** @return a copy of the tasks collected so far */
    public synchronized List<TaskRecord> tasks() {
        return List.copyOf(tasks);
    }
}
