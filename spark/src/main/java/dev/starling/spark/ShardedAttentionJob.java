package dev.starling.spark;

import java.io.PrintStream;
import java.util.List;
import org.apache.spark.sql.SparkSession;

/**
 * The job's entry point for {@code spark-submit}:
 *
 * <pre>
 * spark-submit --class dev.starling.spark.ShardedAttentionJob \
 *     --jars starling-api.jar,starling-backend-reference.jar starling-spark.jar \
 *     --manifest hdfs:///attn/manifest.jsonl --pattern "bigbird(block=64, window=3, global=2, random=3)" --shards 16
 * </pre>
 *
 * Options: {@code --manifest PATH} and {@code --pattern TEXT} (required), {@code --shards N}
 * (default 4), {@code --causal}, {@code --scale X}, {@code --query-blocks-per-chunk N},
 * {@code --output-partition-mb N}, and {@code --master URL} for a run without {@code spark-submit}
 * (as {@code spark/starling-spark} does; {@code spark-submit}'s own {@code --master} goes before the jar). The manifest format is {@link ShardedAttention#readManifest}'s.
 * Prints the {@link JobReport} on standard output. Exit status 0 on success, 2 on bad arguments
 * or inputs, 1 on any other failure.
 */
public final class ShardedAttentionJob {
    private static final String USAGE = "usage: ShardedAttentionJob --manifest PATH --pattern TEXT [--shards N] "
            + "[--causal] [--scale X] [--query-blocks-per-chunk N] [--output-partition-mb N] [--master URL]";

    private ShardedAttentionJob() {
    }

    /**
     * Runs the job on the session {@code spark-submit} configured, then stops it.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        SparkSession.Builder builder = SparkSession.builder().appName("starling-sharded-attention");
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("--master")) {
                builder.master(args[i + 1]);
            }
        }
        SparkSession spark = builder.getOrCreate();
        int status;
        try {
            status = run(spark, args, System.out);
        } finally {
            spark.stop();
        }
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Runs the job on a given session and prints its report.
     *
     * @param spark the session; not stopped
     * @param args the options
     * @param out receives the report, or the error and the usage
     * @return the exit status: 0 success, 2 bad arguments or inputs, 1 other failures
     */
    public static int run(SparkSession spark, String[] args, PrintStream out) {
        String manifest = null;
        ShardedAttention.Builder job = ShardedAttention.builder();
        boolean hasPattern = false;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--manifest" -> manifest = value(args, ++i, a);
                    case "--master" -> value(args, ++i, a); // taken by main, before the session starts
                    case "--pattern" -> {
                        job.pattern(value(args, ++i, a));
                        hasPattern = true;
                    }
                    case "--shards" -> job.shards(Integer.parseInt(value(args, ++i, a)));
                    case "--causal" -> job.causal(true);
                    case "--scale" -> job.scale(Float.parseFloat(value(args, ++i, a)));
                    case "--query-blocks-per-chunk" -> job.queryBlocksPerChunk(Integer.parseInt(value(args, ++i, a)));
                    case "--output-partition-mb" -> job.outputPartitionBytes(Long.parseLong(value(args, ++i, a)) << 20);
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (manifest == null || !hasPattern) {
                throw new IllegalArgumentException("--manifest and --pattern are required");
            }
            ShardedAttention built = job.build();
            List<Sequence> sequences = ShardedAttention.readManifest(spark, manifest);
            JobReport report = built.run(spark, sequences);
            out.print(report.format());
            return 0;
        } catch (IllegalArgumentException e) {
            out.println("error: " + e.getMessage());
            out.println(USAGE);
            return 2;
        } catch (Exception e) {
            out.println("error: " + e);
            return e instanceof java.io.IOException ? 2 : 1;
        }
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }
}
