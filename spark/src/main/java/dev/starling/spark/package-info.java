/**
 * Exact key-sharded block-sparse attention as an Apache Spark job (DESIGN section 8): each task
 * computes the partial {@code (O, LSE)} of one key shard with whichever Starling backend is selected
 * on its executor, partials are shuffled by (sequence, batch, head, query block) and merged with
 * {@link dev.starling.api.plan.OnlineSoftmax#merge}.
 */
package dev.starling.spark;
