package dev.starling.spark;

import org.apache.spark.sql.SparkSession;

/** One {@code local[2]} session for a test class: Spark's start-up costs seconds. */
final class LocalSpark {
    private LocalSpark() {
    }

    static SparkSession start() {
        return SparkSession.builder()
                .appName("starling-spark-test")
                .master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate();
    }
}
