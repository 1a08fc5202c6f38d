package dev.starling.spark;

import dev.starling.api.io.RealFile;
import dev.starling.api.plan.OnlineSoftmax;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import scala.Tuple2;

/**
 * The reduce side: merges the partials of each row block and writes one output partition's rows
 * as raw float32 "parts", later concatenated into the sequence's {@code .npy} files by
 * {@link OutputFiles}.
 */
final class OutputParts {

    /**
     * A part written by one output partition.
     *
     * @param sequence the sequence's index
     * @param partition the output partition
     * @param out the part of the output
     * @param lse the part of the LSE, or {@code null}
     * @param rowBlocks row blocks written
     * @param mergedPartials partials that were merged into them
     */
    record WrittenPart(int sequence, int partition, String out, String lse, long rowBlocks, long mergedPartials)
            implements Serializable {
        private static final long serialVersionUID = 1L;
    }

    private OutputParts() {
    }

    /** @return the folder beside {@code out} that holds a run's parts for it */
    static Path stagingDir(String out, String runId) {
        Path p = new Path(out);
        return new Path(p.getParent(), RealFile.hiddenName(p.getName(), "starling-" + runId));
    }

    /**
     * Merges and writes the partials of one output partition. The partials arrive sorted by
     * (sequence, batch, head, query block, shard); every row block of the partition's range is
     * written, and a row block no shard touched gets {@code O = 0} and {@code LSE = −∞} (an empty
     * row, DESIGN section 2).
     *
     * @param partition the output partition
     * @param sorted its partials, sorted. Consumed.
     * @param plans every sequence of the job
     * @param partitioner the partitioner that made the partition
     * @param runId the job run's id
     * @param conf resolves the output paths
     * @return the part written
     * @throws IOException if writing fails
     */
    static WrittenPart write(int partition, Iterator<Tuple2<RowBlockKey, float[]>> sorted, List<SequencePlan> plans,
                             OutputPartitioner partitioner, String runId, Configuration conf) throws IOException {
        SequencePlan plan = plans.get(partitioner.sequenceOf(partition));
        long begin = partitioner.rangeBegin(partition);
        long end = partitioner.rangeEnd(partition);
        Path dir = stagingDir(plan.sequence.out(), runId);
        FileSystem fs = dir.getFileSystem(conf);
        Path outPart = new Path(dir, String.format("part-%05d.out", partition));
        Path lsePart = plan.sequence.lse() == null ? null : new Path(stagingDir(plan.sequence.lse(), runId),
                String.format("part-%05d.lse", partition));
        int dv = plan.valueDim;
        float[] acc = new float[plan.queryBlock * (dv + 1)];
        long merged = 0;
        try (OutputStream o = new BufferedOutputStream(fs.create(outPart, true), 1 << 16);
             OutputStream l = lsePart == null ? OutputStream.nullOutputStream()
                     : new BufferedOutputStream(lsePart.getFileSystem(conf).create(lsePart, true), 1 << 16)) {
            ByteBuffer bytes = ByteBuffer.allocate(4 * acc.length).order(ByteOrder.LITTLE_ENDIAN);
            Tuple2<RowBlockKey, float[]> next = sorted.hasNext() ? sorted.next() : null;
            for (long flat = begin; flat < end; flat++) {
                int qb = (int) (flat % plan.queryBlocks);
                int rows = plan.rows(qb);
                boolean any = false;
                while (next != null && plan.flatIndex(next._1().batch, next._1().head, next._1().queryBlock) == flat) {
                    float[] part = next._2();
                    if (part.length != rows * (dv + 1)) {
                        throw new IllegalStateException("partial " + next._1() + " has " + part.length + " floats; "
                                + rows + " rows need " + rows * (dv + 1));
                    }
                    if (!any) {
                        System.arraycopy(part, 0, acc, 0, part.length);
                        any = true;
                    } else {
                        for (int r = 0; r < rows; r++) {
                            acc[rows * dv + r] = OnlineSoftmax.merge(acc, r * dv, acc[rows * dv + r], part, r * dv,
                                    part[rows * dv + r], dv, acc, r * dv);
                        }
                    }
                    merged++;
                    next = sorted.hasNext() ? sorted.next() : null;
                }
                if (next != null && plan.flatIndex(next._1().batch, next._1().head, next._1().queryBlock) < flat) {
                    throw new IllegalStateException("partials are not sorted: " + next._1() + " after row block " + flat);
                }
                if (!any) {
                    Arrays.fill(acc, 0, rows * dv, 0f);
                    Arrays.fill(acc, rows * dv, rows * (dv + 1), Float.NEGATIVE_INFINITY);
                }
                bytes.clear();
                bytes.asFloatBuffer().put(acc, 0, rows * dv);
                o.write(bytes.array(), 0, 4 * rows * dv);
                bytes.clear();
                bytes.asFloatBuffer().put(acc, rows * dv, rows);
                l.write(bytes.array(), 0, 4 * rows);
            }
            if (next != null) {
                throw new IllegalStateException("partial " + next._1() + " arrived at output partition " + partition
                        + ", which writes row blocks [" + begin + ", " + end + ") of sequence '" + plan.sequence.id() + "'");
            }
        }
        return new WrittenPart(plan.index, partition, outPart.toString(), lsePart == null ? null : lsePart.toString(),
                end - begin, merged);
    }
}
