package dev.starling.spark;

import dev.starling.api.selection.NoBackendException;
import java.io.PrintStream;
import java.util.List;
import org.apache.spark.SparkException;
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
 * Prints the {@link JobReport} on standard output, or one line {@code "error: …"} on standard
 * error (the usage after it for a wrong option). Exit status 0 on success, 2 on bad arguments or
 * inputs (also when a task finds them bad, e.g. a file that changed since the driver checked it),
 * 1 on any other failure.
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
            status = run(spark, args, System.out, System.err);
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
     * @param out receives the report
     * @param err receives a failure: one line {@code "error: …"} (a task's failure reduced to its
     *            cause), followed by the usage for a usage error
     * @return the exit status: 0 success, 2 bad arguments or inputs (also when a task found them
     *         bad), 1 other failures
     */
    public static int run(SparkSession spark, String[] args, PrintStream out, PrintStream err) {
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
                    case "--shards" -> job.shards(integer(args, ++i, a, 1, Integer.MAX_VALUE));
                    case "--causal" -> job.causal(true);
                    case "--scale" -> job.scale(number(args, ++i, a));
                    case "--query-blocks-per-chunk" -> job.queryBlocksPerChunk(integer(args, ++i, a, 0, Integer.MAX_VALUE));
                    case "--output-partition-mb" -> job.outputPartitionBytes(
                            (long) integer(args, ++i, a, 1, Integer.MAX_VALUE) << 20);
                    default -> throw new UsageException("unknown option " + a);
                }
            }
            if (manifest == null || !hasPattern) {
                throw new UsageException("--manifest and --pattern are required");
            }
            ShardedAttention built = job.build();
            List<Sequence> sequences = ShardedAttention.readManifest(spark, manifest);
            JobReport report = built.run(spark, sequences);
            out.print(report.format());
            out.flush();
            return 0;
        } catch (UsageException e) {
            err.println("error: " + e.getMessage());
            err.println(USAGE);
            return 2;
        } catch (Exception e) {
            Throwable cause = cause(e);
            err.println("error: " + message(cause));
            return isBadInput(cause) ? 2 : 1;
        }
    }

    /** A wrong option: the message is followed by the usage. */
    private static final class UsageException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    /**
     * The failure itself: Spark reports a failed task as a {@link SparkException} ("Job aborted due
     * to stage failure: …" and the executor's stack trace) whose cause is the task's exception.
     */
    static Throwable cause(Throwable e) {
        Throwable t = e;
        while ((t instanceof SparkException || t instanceof java.util.concurrent.ExecutionException
                || t instanceof java.io.UncheckedIOException) && t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t;
    }

    /** Bad input, as opposed to a bug or a cluster failure: what the user can fix in the manifest, files or options. */
    static boolean isBadInput(Throwable t) {
        return t instanceof java.io.IOException || t instanceof IllegalArgumentException
                || t instanceof UnsupportedOperationException || t instanceof NoBackendException;
    }

    /** One line: a message of our own as it is, anything else with its class; only the first line of Spark's. */
    static String message(Throwable t) {
        String m = t.getMessage();
        if (m == null || m.isBlank()) {
            return t.getClass().getName();
        }
        String first = m.strip().lines().findFirst().orElse("");
        return isBadInput(t) || t instanceof SparkException ? first : t.getClass().getName() + ": " + first;
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new UsageException(option + " needs a value");
        }
        return args[i];
    }

    private static int integer(String[] args, int i, String option, int min, int max) {
        String v = value(args, i, option);
        try {
            int n = v.chars().allMatch(c -> c == '-' || (c >= '0' && c <= '9')) ? Integer.parseInt(v) : min - 1;
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // Said below, with the option.
        }
        throw new UsageException(option + " must be an integer from " + min + " to " + max + ", got '" + v + "'");
    }

    private static float number(String[] args, int i, String option) {
        String v = value(args, i, option);
        try {
            return Float.parseFloat(v);
        } catch (NumberFormatException e) {
            throw new UsageException(option + " must be a number, got '" + v + "'");
        }
    }
}
