package dev.starling.spark;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.KeyShards;
import dev.starling.api.selection.BackendSelector;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.hadoop.conf.Configuration;
import scala.Tuple2;

/**
 * The work of one shard task, as the stream of partial results it sends to the shuffle.
 *
 * <p>The task reads only its shard's keys and values. It then walks the query blocks in chunks of
 * at most {@link SequencePlan#queryBlocksPerChunk} (by default {@link #defaultChunkBlocks}),
 * skipping blocks no head of the shard's layout
 * touches: for each chunk it reads those query rows, computes their attention over the shard with
 * the backend selected on this executor ({@code -Dstarling.backend} applies), and yields one partial
 * {@code (O rows, LSE rows)} per (batch, head, query block) whose row in the shard's layout is not
 * empty. A chunk is computed only when the previous one has been consumed, so the task holds one
 * chunk at a time: memory is bounded by the shard and the chunk, not by the sequence.
 *
 * <p>A chunk of query blocks {@code [a, b)} is an ordinary problem: queries
 * {@code [a·Bq, min(Nq, b·Bq))}, the shard's keys, query lengths cut to the chunk and the causal
 * rule moved by the chunk's first query ({@code shift + a·Bq}), and the shard layout's rows
 * {@code [a, b)}.
 */
final class ShardPartials implements Iterator<Tuple2<RowBlockKey, float[]>>, Closeable {
    private final SequencePlan plan;
    private final int shard;
    private final AttentionProblem shardProblem;
    private final BlockLayout shardLayout;
    private final SparseAttention backend;
    private final Tensor keys;
    private final Tensor values;
    private final NpyTensorFile queries;
    private final int chunkBlocks;
    private final long fixedBytes;
    private final int firstKey;
    private final java.util.function.Consumer<ShardTaskStats> onDone;

    private int nextBlock;
    private Tensor out;
    private float[] lse;
    private int chunkFirstBlock;
    private int chunkRows;
    private long[] pending = new long[0];
    private int pendingCount;
    private int pendingAt;
    private boolean done;

    private int chunks;
    private long rowBlocks;
    private long partialBytes;
    private long workingSet;
    private long readNanos;
    private long computeNanos;

    /**
     * Reads the shard's keys and values and prepares the first chunk lazily.
     *
     * @param plan the sequence
     * @param shard the shard
     * @param conf resolves the input paths
     * @param onDone receives the task's statistics once every partial has been consumed
     * @throws IOException if an input cannot be read
     */
    ShardPartials(SequencePlan plan, int shard, Configuration conf, java.util.function.Consumer<ShardTaskStats> onDone)
            throws IOException {
        this.plan = plan;
        this.shard = shard;
        this.onDone = onDone;
        AttentionProblem problem = plan.problem();
        BlockLayout layout = plan.layout(problem);
        KeyShards shards = plan.shards(problem, layout);
        long wholeLayoutBytes = layout.memoryBytes();
        this.shardProblem = shards.problem(shard);
        this.shardLayout = shards.layout(shard);
        long nnz = 0;
        for (int hl = 0; hl < shardLayout.heads(); hl++) {
            nnz += shardLayout.nnz(hl);
        }
        if (nnz != plan.shardNnz[shard]) {
            throw new IllegalStateException("sequence '" + plan.sequence.id() + "', shard " + shard + ": this executor "
                    + "drew " + nnz + " allowed blocks from '" + plan.pattern + "' but the driver drew "
                    + plan.shardNnz[shard] + "; run the same Starling version on the driver and every executor");
        }
        this.backend = BackendSelector.discover().select(shardProblem, true);
        this.firstKey = shards.firstKey(shard);
        int keyCount = shards.keyCount(shard);
        String id = plan.sequence.id();
        long t0 = System.nanoTime();
        try (NpyTensorFile k = NpyTensorFile.open(conf, plan.sequence.k(), "k of sequence '" + id + "'");
             NpyTensorFile v = NpyTensorFile.open(conf, plan.sequence.v(), "v of sequence '" + id + "'")) {
            this.keys = k.readRows(firstKey, keyCount);
            this.values = v.readRows(firstKey, keyCount);
        }
        this.queries = NpyTensorFile.open(conf, plan.sequence.q(), "q of sequence '" + id + "'");
        readNanos += System.nanoTime() - t0;
        this.chunkBlocks = plan.queryBlocksPerChunk > 0 ? plan.queryBlocksPerChunk
                : defaultChunkBlocks(plan, 4L * (keys.data().length + values.data().length));
        this.fixedBytes = 4L * (keys.data().length + values.data().length) + wholeLayoutBytes + shardLayout.memoryBytes();
        this.workingSet = fixedBytes;
    }

    @Override
    public boolean hasNext() {
        while (pendingAt == pendingCount && nextBlock < plan.queryBlocks) {
            try {
                computeNextChunk();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (pendingAt < pendingCount) {
            return true;
        }
        finish();
        return false;
    }

    @Override
    public Tuple2<RowBlockKey, float[]> next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        long packed = pending[pendingAt++];
        int b = (int) (packed >>> 42);
        int h = (int) (packed >>> 21 & 0x1fffff);
        int qb = (int) (packed & 0x1fffff);
        int dv = plan.valueDim;
        int local = (qb - chunkFirstBlock) * plan.queryBlock;
        int rows = plan.rows(qb);
        float[] value = new float[rows * (dv + 1)];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(out.data(), out.offset(b, h, local + r), value, r * dv, dv);
        }
        System.arraycopy(lse, (b * plan.queryHeads + h) * chunkRows + local, value, rows * dv, rows);
        return new Tuple2<>(new RowBlockKey(plan.index, b, h, qb, shard), value);
    }

    private boolean touched(int qb) {
        for (int h = 0; h < plan.queryHeads; h++) {
            if (shardLayout.rowSize(h, qb) > 0) {
                return true;
            }
        }
        return false;
    }

    private void computeNextChunk() throws IOException {
        int a = nextBlock;
        while (a < plan.queryBlocks && !touched(a)) {
            a++;
        }
        if (a == plan.queryBlocks) {
            nextBlock = a;
            return;
        }
        int end = Math.min(plan.queryBlocks, a + chunkBlocks);
        nextBlock = end;
        while (!touched(end - 1)) {
            end--;
        }
        int firstRow = a * plan.queryBlock;
        int rows = Math.min(plan.queryLength, end * plan.queryBlock) - firstRow;

        AttentionProblem.Builder pb = shardProblem.toBuilder().queryLength(rows);
        long shift = shardProblem.causalShift() + firstRow;
        if (shift > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("causal shift " + shift + " does not fit an int");
        }
        pb.causalShift((int) shift);
        if (shardProblem.hasQueryLengths()) {
            int[] lengths = new int[plan.batch];
            for (int b = 0; b < lengths.length; b++) {
                lengths[b] = Math.max(0, Math.min(rows, shardProblem.queryLength(b) - firstRow));
            }
            pb.queryLengths(lengths);
        }
        AttentionProblem chunkProblem = pb.build();
        BlockLayout chunkLayout = rowsOf(shardLayout, a, end, rows);

        long t0 = System.nanoTime();
        Tensor q = queries.readRows(firstRow, rows);
        long t1 = System.nanoTime();
        out = Tensor.zeros(TensorLayout.BHSD, plan.batch, plan.queryHeads, rows, plan.valueDim);
        lse = new float[chunkProblem.lseSize()];
        try (AttentionPlan attention = backend.plan(chunkProblem, chunkLayout)) {
            attention.forward(q, keys, values, out, lse);
        }
        long t2 = System.nanoTime();
        readNanos += t1 - t0;
        computeNanos += t2 - t1;
        chunks++;
        workingSet = Math.max(workingSet, fixedBytes + chunkLayout.memoryBytes()
                + 4L * (q.data().length + out.data().length + lse.length));

        chunkFirstBlock = a;
        chunkRows = rows;
        int needed = plan.batch * plan.queryHeads * (end - a);
        if (pending.length < needed) {
            pending = new long[needed];
        }
        pendingCount = 0;
        pendingAt = 0;
        for (int b = 0; b < plan.batch; b++) {
            for (int h = 0; h < plan.queryHeads; h++) {
                for (int qb = a; qb < end; qb++) {
                    if (shardLayout.rowSize(h, qb) > 0) {
                        pending[pendingCount++] = (long) b << 42 | (long) h << 21 | qb;
                        partialBytes += 4L * plan.rows(qb) * (plan.valueDim + 1);
                    }
                }
            }
        }
        rowBlocks += pendingCount;
    }

    /** Bytes of queries and outputs a chunk may hold at least, so that a small shard is not cut into tiny chunks. */
    static final long MIN_CHUNK_BYTES = 16L << 20;

    /**
     * The default chunk: query blocks whose queries, outputs and LSE take about as many bytes as
     * the shard's keys and values, and at least {@link #MIN_CHUNK_BYTES} (each chunk costs a plan
     * and {@code B·Hq} reads, which a shard of one global key block would otherwise pay once per
     * query block).
     */
    static int defaultChunkBlocks(SequencePlan plan, long keyValueBytes) {
        long perBlock = 4L * plan.batch * plan.queryBlock * plan.queryHeads * (plan.headDim + plan.valueDim + 1);
        long blocks = Math.max(keyValueBytes, MIN_CHUNK_BYTES) / perBlock;
        return (int) Math.max(1, Math.min(plan.queryBlocks, blocks));
    }

    /** Rows {@code [a, end)} of a layout (with their block counts), as a layout of {@code rows} queries. */
    static BlockLayout rowsOf(BlockLayout layout, int a, int end, int rows) {
        int heads = layout.heads();
        int[][] rowStart = new int[heads][];
        int[][] cols = new int[heads][];
        int[][] counts = layout.hasCounts() ? new int[heads][] : null;
        for (int hl = 0; hl < heads; hl++) {
            int[] starts = layout.rowStart(hl);
            int[] blocks = layout.keyBlockIndices(hl);
            int base = starts[a];
            int[] rs = new int[end - a + 1];
            for (int r = 0; r <= end - a; r++) {
                rs[r] = starts[a + r] - base;
            }
            rowStart[hl] = rs;
            cols[hl] = java.util.Arrays.copyOfRange(blocks, base, starts[end]);
            if (counts != null) {
                counts[hl] = java.util.Arrays.copyOfRange(layout.counts(hl), base, starts[end]);
            }
        }
        return BlockLayout.ofCsr(rows, layout.keyLength(), layout.queryBlock(), layout.keyBlock(), layout.causal(),
                rowStart, cols, counts, layout.drawnForHeads());
    }

    private void finish() {
        if (done) {
            return;
        }
        done = true;
        out = null;
        lse = null;
        close();
        String executor = org.apache.spark.SparkEnv.get() != null ? org.apache.spark.SparkEnv.get().executorId() : "?";
        onDone.accept(new ShardTaskStats(plan.index, shard, firstKey, keys.length(), backend.name(), executor, chunks,
                rowBlocks, partialBytes, workingSet, readNanos / 1_000_000, computeNanos / 1_000_000));
    }

    /** Closes the query file; idempotent. */
    @Override
    public void close() {
        try {
            queries.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
