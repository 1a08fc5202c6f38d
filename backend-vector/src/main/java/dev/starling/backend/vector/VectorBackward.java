package dev.starling.backend.vector;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The backward pass of DESIGN section 4 on the vector backend, in one sweep over key blocks.
 *
 * <p>Work units are {@code (batch, key/value head, chunk)}: a chunk is a contiguous range of key
 * blocks, balanced by how many query blocks read them. The number of chunks per head depends on
 * the problem only ({@link #chunks}: about {@value #UNITS} units in all), never on the thread count.
 * A unit owns the {@code dK} and {@code dV} of its keys, and writes each query block's {@code dQ}
 * contribution into a slot of its own; after the sweep, each row's {@code dQ} is the sum of its
 * slots in chunk order. Every sum therefore runs in one fixed order, whichever thread runs which
 * unit: the same bits on every call and with any number of threads. Memory: the slots (at most
 * one per (chunk, query head, query block) that the chunk reads, about {@code |dQ|} when there is
 * one chunk) and a few bytes per row and key, all linear in the sequence.
 *
 * <p>Before the sweep, per row: {@code D = Σ dO·O} and whether it reads a non-finite value (in
 * {@code q}, {@code dO}, {@code out}, its {@code LSE}, or a key or value it reads). Such rows are
 * left out of the sweep and recomputed afterwards one by one with the float64 oracle's formulas
 * ({@code conformance/GradientOracle}: their own softmax from {@code q} and {@code k}, {@code O}
 * summed over the keys the row reads), so NaN and infinities land where DESIGN section 2 puts them;
 * rows with a huge LSE ({@link #LARGE_LSE}) take the same path, so huge finite logits give bounded gradients;
 * rows with {@code dO = 0}, padded and empty rows contribute nothing.
 */
final class VectorBackward {
    /**
     * Rows with {@code |LSE|} at least this take the float64 row path ({@link #exactRow}: the row's own
     * maximum and sum, {@code P = exp(s − m) / Σ}): the sweep's {@code P = exp(S − LSE)} from the float32
     * LSE is off by up to half its ulp in the exponent, {@code 6e-5} relative here and {@code ×e^±64} at
     * {@code 1e9}, where it cannot tell tied weights of 1/2 from 1. Such scores do not occur in training
     * that works, so the slow path costs nothing there.
     */
    static final float LARGE_LSE = 1024f;
    /** About how many units a call has: chunks per head = {@code ⌈UNITS / (B·Hkv)⌉}. */
    static final int UNITS = 16;

    private final VectorPlan plan;
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final TokenMask mask;
    private final LayoutColumns columns;
    private final int chunks;
    private final int[][] chunkStart;
    private final int[][] slotIndex;
    private final int slotsPerBatch;
    private final int dPad;
    private final int slotFloats;
    private final int keyTile;
    /** Units in claiming order (most work first): {@code (b·Hkv + kvh)·chunks + chunk}. */
    private final int[] units;
    private final ConcurrentLinkedQueue<Scratch> spare = new ConcurrentLinkedQueue<>();

    /** What one call owns while it runs. */
    private final class Scratch {
        final float[] dqSlots;
        final float[] delta;
        final byte[] rowState;
        final byte[] keyBad;
        final boolean[] itemBad;
        final GradientKernel[] kernels;

        Scratch(int threads) {
            dqSlots = chunks == 1 ? new float[0]
                    : new float[Math.multiplyExact(Math.multiplyExact(problem.batch(), slotsPerBatch), slotFloats)];
            delta = new float[problem.lseSize()];
            rowState = new byte[problem.lseSize()];
            keyBad = new byte[Math.multiplyExact(problem.batch() * problem.kvHeads(), problem.keyLength())];
            itemBad = new boolean[problem.batch() * problem.kvHeads()];
            kernels = new GradientKernel[threads];
        }

        GradientKernel kernel(int worker) {
            GradientKernel k = kernels[worker];
            if (k == null) {
                k = new dev.starling.backend.vector.kernel.GradientTileKernel(problem.headDim(), problem.valueDim(), keyTile);
                kernels[worker] = k;
            }
            return k;
        }
    }

    VectorBackward(VectorPlan plan, int chunksOverride) {
        this.plan = plan;
        this.problem = plan.problem();
        this.layout = plan.layout();
        this.mask = plan.mask();
        this.columns = LayoutColumns.of(layout);
        int kvHeads = problem.kvHeads();
        int queryHeads = problem.queryHeads();
        int keyBlocks = layout.keyBlocks();
        int queryBlocks = layout.queryBlocks();
        this.chunks = chunksOverride > 0 ? Math.min(chunksOverride, keyBlocks) : chunks(problem, keyBlocks);
        this.keyTile = Math.max(1, Math.min(dev.starling.backend.vector.kernel.GradientTileKernel.KEY_TILE,
                Math.min(layout.keyBlock(), problem.keyLength())));
        this.dPad = dev.starling.backend.vector.kernel.GradientTileKernel.roundUp(problem.headDim());
        int qRows = Math.max(1, Math.min(layout.queryBlock(), problem.queryLength()));
        this.slotFloats = Math.multiplyExact(qRows, dPad);
        // Chunks of each key/value head: contiguous key blocks, balanced by readings.
        this.chunkStart = new int[kvHeads][];
        long[][] chunkCost = new long[kvHeads][chunks];
        int group = problem.groupSize();
        for (int kvh = 0; kvh < kvHeads; kvh++) {
            long[] cost = new long[keyBlocks];
            long total = 0;
            for (int kb = 0; kb < keyBlocks; kb++) {
                cost[kb] = 1;
                for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                    cost[kb] += columns.columnEnd(h, kb) - columns.columnBegin(h, kb);
                }
                total += cost[kb];
            }
            int[] start = new int[chunks + 1];
            long acc = 0;
            int c = 1;
            for (int kb = 0; kb < keyBlocks && c < chunks; kb++) {
                acc += cost[kb];
                // Cut after kb once this chunk has its share, leaving a block for each chunk still to come.
                if (acc * chunks >= total * c || keyBlocks - (kb + 1) <= chunks - c) {
                    start[c++] = kb + 1;
                }
            }
            start[chunks] = keyBlocks;
            chunkStart[kvh] = start;
            for (int x = 0; x < chunks; x++) {
                for (int kb = start[x]; kb < start[x + 1]; kb++) {
                    chunkCost[kvh][x] += cost[kb];
                }
            }
        }
        // Slots: one per (query head, chunk, query block the chunk reads).
        this.slotIndex = new int[queryHeads][];
        int next = 0;
        for (int h = 0; h < queryHeads; h++) {
            int[] slots = new int[Math.multiplyExact(chunks, queryBlocks)];
            Arrays.fill(slots, -1);
            int[] start = chunkStart[problem.kvHeadOf(h)];
            for (int c = 0; c < chunks; c++) {
                for (int kb = start[c]; kb < start[c + 1]; kb++) {
                    for (int at = columns.columnBegin(h, kb); at < columns.columnEnd(h, kb); at++) {
                        int x = c * queryBlocks + columns.queryBlock(h, at);
                        if (slots[x] < 0) {
                            slots[x] = next++;
                        }
                    }
                }
            }
            slotIndex[h] = slots;
        }
        this.slotsPerBatch = next;
        int n = Math.multiplyExact(problem.batch() * kvHeads, chunks);
        Integer[] order = new Integer[n];
        for (int u = 0; u < n; u++) {
            order[u] = u;
        }
        int ch = chunks;
        Arrays.sort(order, (x, y) -> Long.compare(chunkCost[(y / ch) % kvHeads][y % ch], chunkCost[(x / ch) % kvHeads][x % ch]));
        this.units = new int[n];
        for (int u = 0; u < n; u++) {
            units[u] = order[u];
        }
    }

    /**
     * Chunks per key/value head: enough for about {@value #UNITS} units in all, at most one per key
     * block. A function of the problem only, so the sums (and bits) never depend on threads.
     *
     * @param problem the problem
     * @param keyBlocks key blocks of the layout
     * @return chunks per head
     */
    static int chunks(AttentionProblem problem, int keyBlocks) {
        long heads = (long) problem.batch() * problem.kvHeads();
        return (int) Math.max(1, Math.min(keyBlocks, (UNITS + heads - 1) / heads));
    }

    /** @return chunks per key/value head */
    int chunks() {
        return chunks;
    }

    void run(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk, Tensor dv) {
        Scratch scratch = spare.poll();
        if (scratch == null) {
            scratch = new Scratch(plan.threads());
        }
        try {
            run(scratch, q, k, v, out, lse, dOut, dq, dk, dv);
        } finally {
            if (!plan.isClosedNow()) {
                spare.offer(scratch);
            }
        }
    }

    void clear() {
        spare.clear();
    }

    private void run(Scratch s, Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq, Tensor dk,
                     Tensor dv) {
        int batch = problem.batch();
        int queryHeads = problem.queryHeads();
        int kvHeads = problem.kvHeads();
        int rowItems = batch * queryHeads;
        Arrays.fill(s.itemBad, false);
        plan.parallel(rowItems + batch * kvHeads, (w, item) -> {
            if (item < rowItems) {
                rows(item / queryHeads, item % queryHeads, q, out, lse, dOut, chunks == 1 ? dq : null, s);
            } else {
                keys(item - rowItems, k, v, s);
            }
        });
        boolean anyBad = false;
        for (boolean x : s.itemBad) {
            anyBad |= x;
        }
        if (anyBad) {
            markReaders(s);
        }
        GradientCall call = new GradientCall(mask, columns, q, k, v, dOut, lse, dk, dv, anyBad, s.delta, s.rowState,
                chunkStart, slotIndex, slotsPerBatch, slotFloats, dPad, s.dqSlots, chunks == 1 ? dq : null);
        plan.parallel(units.length, (w, item) -> {
            int u = units[item];
            int bk = u / chunks;
            s.kernel(w).unit(call, bk / kvHeads, bk % kvHeads, u % chunks);
        });
        if (chunks > 1) {
            plan.parallel(rowItems, (w, item) -> reduce(item / queryHeads, item % queryHeads, dq, s.dqSlots));
        }
        for (int row = 0; row < s.rowState.length; row++) {
            if (s.rowState[row] == GradientCall.TAINTED) {
                int i = row % problem.queryLength();
                int bh = row / problem.queryLength();
                exactRow(bh / queryHeads, bh % queryHeads, i, q, k, v, dOut, dq, dk, dv);
            }
        }
    }

    /** Row state and {@code D} for the rows of {@code (b, h)}; zeroes their {@code dq} rows when units add into them. */
    private void rows(int b, int h, Tensor q, Tensor out, float[] lse, Tensor dOut, Tensor dq, Scratch s) {
        float[] qd = q.data();
        float[] od = out.data();
        float[] gd = dOut.data();
        int dim = problem.headDim();
        int vdim = problem.valueDim();
        int valid = problem.queryLength(b);
        float[] scan = new float[dev.starling.backend.vector.kernel.RowScan.RESULT_LENGTH];
        for (int i = 0; i < problem.queryLength(); i++) {
            int row = mask.lseIndex(b, h, i);
            s.delta[row] = 0f;
            if (dq != null) {
                Arrays.fill(dq.data(), dq.offset(b, h, i), dq.offset(b, h, i) + dim, 0f);
            }
            if (i >= valid) {
                s.rowState[row] = GradientCall.SKIP;
                continue;
            }
            dev.starling.backend.vector.kernel.RowScan.row(qd, q.offset(b, h, i), dim, gd, dOut.offset(b, h, i), od,
                    out.offset(b, h, i), vdim, scan);
            float delta = scan[0];
            boolean zero = scan[1] != 0f;
            if (Float.isNaN(delta) || !Float.isFinite(lse[row]) || !zero && Math.abs(lse[row]) >= LARGE_LSE) {
                s.rowState[row] = readsAnyKey(b, h, i) ? GradientCall.TAINTED : GradientCall.SKIP;
            } else {
                s.rowState[row] = zero ? GradientCall.SKIP : GradientCall.ACTIVE;
                s.delta[row] = delta;
            }
        }
    }

    /** Marks the non-finite keys and values of {@code (b, kvh)}. */
    private void keys(int item, Tensor k, Tensor v, Scratch s) {
        int b = item / problem.kvHeads();
        int kvh = item % problem.kvHeads();
        float[] kd = k.data();
        float[] vd = v.data();
        int nk = problem.keyLength();
        boolean bad = false;
        for (int j = 0; j < nk; j++) {
            boolean x = !dev.starling.backend.vector.kernel.RowScan.finite(kd, k.offset(b, kvh, j), problem.headDim())
                    || !dev.starling.backend.vector.kernel.RowScan.finite(vd, v.offset(b, kvh, j), problem.valueDim());
            s.keyBad[item * nk + j] = (byte) (x ? 1 : 0);
            bad |= x;
        }
        s.itemBad[item] = bad;
    }

    /** Marks every row that reads a non-finite key or value as tainted. */
    private void markReaders(Scratch s) {
        int nk = problem.keyLength();
        int keyBlocks = layout.keyBlocks();
        int[] firstBad = new int[keyBlocks];
        for (int item = 0; item < s.itemBad.length; item++) {
            if (!s.itemBad[item]) {
                continue;
            }
            int b = item / problem.kvHeads();
            int kvh = item % problem.kvHeads();
            for (int kb = 0; kb < keyBlocks; kb++) {
                firstBad[kb] = Integer.MAX_VALUE;
                for (int j = mask.keyBegin(kb); j < mask.keyEnd(kb); j++) {
                    if (s.keyBad[item * nk + j] != 0) {
                        firstBad[kb] = j;
                        break;
                    }
                }
            }
            for (int h = kvh * problem.groupSize(); h < (kvh + 1) * problem.groupSize(); h++) {
                for (int i = 0; i < problem.queryLength(b); i++) {
                    int row = mask.lseIndex(b, h, i);
                    int qb = i / layout.queryBlock();
                    for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
                        int kb = layout.keyBlock(h, p);
                        if (firstBad[kb] < mask.keyEnd(b, i, kb)) {
                            s.rowState[row] = GradientCall.TAINTED;
                            break;
                        }
                    }
                }
            }
        }
    }

    private boolean readsAnyKey(int b, int h, int i) {
        int qb = i / layout.queryBlock();
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
            int kb = layout.keyBlock(h, p);
            if (mask.keyEnd(b, i, kb) > mask.keyBegin(kb)) {
                return true;
            }
        }
        return false;
    }

    /** {@code dQ} of the rows of {@code (b, h)}: the sum of their slots in chunk order (0 without one). */
    private void reduce(int b, int h, Tensor dq, float[] slots) {
        float[] out = dq.data();
        int dim = problem.headDim();
        int queryBlocks = layout.queryBlocks();
        int[] index = slotIndex[h];
        for (int qb = 0; qb < queryBlocks; qb++) {
            int qBegin = mask.queryBegin(qb);
            for (int i = qBegin; i < mask.queryEnd(qb); i++) {
                int o = dq.offset(b, h, i);
                boolean first = true;
                for (int c = 0; c < chunks; c++) {
                    int slot = index[c * queryBlocks + qb];
                    if (slot < 0) {
                        continue;
                    }
                    int at = (b * slotsPerBatch + slot) * slotFloats + (i - qBegin) * dPad;
                    if (first) {
                        System.arraycopy(slots, at, out, o, dim);
                        first = false;
                    } else {
                        for (int d = 0; d < dim; d++) {
                            out[o + d] += slots[at + d];
                        }
                    }
                }
                if (first) {
                    Arrays.fill(out, o, o + dim, 0f);
                }
            }
        }
    }

    /**
     * One row that reads a non-finite value, as the float64 oracle computes it: its softmax over its
     * allowed keys from {@code q} and {@code k} and the blocks' counts (not the forward's {@code LSE}), its output over those
     * keys, {@code D}, and its contributions, written to {@code dq} and added to {@code dk} and
     * {@code dv} (in row order, after the sweep: the same bits every call).
     */
    private void exactRow(int b, int h, int i, Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor dq, Tensor dk,
                          Tensor dv) {
        int kvh = problem.kvHeadOf(h);
        int dim = problem.headDim();
        int vdim = problem.valueDim();
        double scale = problem.scale();
        int qb = i / layout.queryBlock();
        int count = 0;
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
            int kb = layout.keyBlock(h, p);
            count += Math.max(0, mask.keyEnd(b, i, kb) - mask.keyBegin(kb));
        }
        int[] keys = new int[count];
        double[] logWeight = new double[count];
        double[] prob = new double[count];
        int n = 0;
        for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
            int kb = layout.keyBlock(h, p);
            for (int j = mask.keyBegin(kb); j < mask.keyEnd(b, i, kb); j++) {
                logWeight[n] = mask.logWeight(h, p);
                keys[n++] = j;
            }
        }
        float[] qd = q.data();
        float[] kd = k.data();
        float[] vd = v.data();
        float[] gd = dOut.data();
        int qo = q.offset(b, h, i);
        int go = dOut.offset(b, h, i);
        double max = Double.NEGATIVE_INFINITY;
        for (int x = 0; x < count; x++) {
            int ko = k.offset(b, kvh, keys[x]);
            double dot = 0;
            for (int d = 0; d < dim; d++) {
                dot += (double) qd[qo + d] * kd[ko + d];
            }
            prob[x] = logWeight[x] == 0 ? scale * dot : scale * dot + logWeight[x];
            max = x == 0 ? prob[x] : Math.max(max, prob[x]);
        }
        double sum = 0;
        for (int x = 0; x < count; x++) {
            prob[x] = Math.exp(prob[x] - max);
            sum += prob[x];
        }
        for (int x = 0; x < count; x++) {
            prob[x] /= sum;
        }
        double[] o = new double[vdim];
        for (int x = 0; x < count; x++) {
            int vo = v.offset(b, kvh, keys[x]);
            for (int f = 0; f < vdim; f++) {
                o[f] += prob[x] * vd[vo + f];
            }
        }
        double delta = 0;
        for (int f = 0; f < vdim; f++) {
            delta += gd[go + f] * o[f];
        }
        double[] accQ = new double[dim];
        float[] dkd = dk.data();
        float[] dvd = dv.data();
        for (int x = 0; x < count; x++) {
            int ko = k.offset(b, kvh, keys[x]);
            int vo = v.offset(b, kvh, keys[x]);
            int dko = dk.offset(b, kvh, keys[x]);
            int dvo = dv.offset(b, kvh, keys[x]);
            double dp = 0;
            for (int f = 0; f < vdim; f++) {
                dp += gd[go + f] * (double) vd[vo + f];
                dvd[dvo + f] = (float) (dvd[dvo + f] + prob[x] * gd[go + f]);
            }
            double ds = prob[x] * (dp - delta);
            for (int d = 0; d < dim; d++) {
                accQ[d] += scale * ds * kd[ko + d];
                dkd[dko + d] = (float) (dkd[dko + d] + scale * ds * qd[qo + d]);
            }
        }
        float[] dqd = dq.data();
        int dqo = dq.offset(b, h, i);
        for (int d = 0; d < dim; d++) {
            dqd[dqo + d] = (float) accQ[d];
        }
    }
}
