package dev.starling.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Feature;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;

/**
 * Block counts on every CPU backend that declares them (the kit's rule 41 checks their numbers against
 * the oracle): rows whose counts are all 1, in a layout with counts elsewhere, are bit for bit the rows of
 * the layout without counts, forward and backward; a backend that does not declare them refuses such a
 * layout, naming the feature.
 */
class BlockCountsBackendsTest {
    private static final int N = 300;
    private static final int HEADS = 2;

    private static List<SparseAttention> backends() {
        List<SparseAttention> out = new ArrayList<>();
        for (SparseAttention b : ServiceLoader.load(SparseAttention.class)) {
            if (b.availability().isAvailable()) {
                out.add(b);
            }
        }
        return out;
    }

    /** {@code plain} with a count of 3 on the first entry of every odd query block (even blocks keep counts of 1). */
    private static BlockLayout oddRowsCounted(BlockLayout plain) {
        int[][] cs = new int[plain.heads()][];
        for (int h = 0; h < plain.heads(); h++) {
            cs[h] = plain.counts(h);
            for (int qb = 1; qb < plain.queryBlocks(); qb += 2) {
                if (plain.rowSize(h, qb) > 0) {
                    cs[h][plain.rowBegin(h, qb)] = 3;
                }
            }
        }
        return plain.withCounts(cs);
    }

    private static Tensor random(Random rnd, int heads, int n, int d) {
        Tensor t = Tensor.zeros(TensorLayout.BHSD, 1, heads, n, d);
        for (int i = 0; i < t.data().length; i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    @Test
    void rowsWithCountsOfOneAreBitIdenticalToTheLayoutWithoutCounts() {
        AttentionProblem p = AttentionProblem.builder().heads(HEADS).length(N).headDim(16).build();
        BlockLayout plain = Patterns.parse("bigbird(block=32, window=3, global=1, random=2, seed=5)").layout(N, N, HEADS);
        BlockLayout counted = oddRowsCounted(plain);
        assertTrue(counted.hasCounts());
        Random rnd = new Random(41);
        Tensor q = random(rnd, HEADS, N, 16);
        Tensor k = random(rnd, HEADS, N, 16);
        Tensor v = random(rnd, HEADS, N, 16);
        Tensor dOut = random(rnd, HEADS, N, 16);
        int checked = 0;
        for (SparseAttention backend : backends()) {
            if (!backend.capabilities().has(Feature.BLOCK_COUNTS)) {
                continue;
            }
            checked++;
            float[][] a = run(backend, p, plain, q, k, v, dOut);
            float[][] b = run(backend, p, counted, q, k, v, dOut);
            for (int h = 0; h < HEADS; h++) {
                for (int i = 0; i < N; i++) {
                    boolean setRow = (i / 32) % 2 == 0;
                    int row = h * N + i;
                    for (int d = 0; d < 16; d++) {
                        int at = row * 16 + d;
                        if (setRow) {
                            assertEquals(Float.floatToRawIntBits(a[0][at]), Float.floatToRawIntBits(b[0][at]),
                                    backend.name() + ": output of row " + row + " (counts 1) differs from the layout without counts");
                        }
                    }
                    if (setRow) {
                        assertEquals(Float.floatToRawIntBits(a[1][row]), Float.floatToRawIntBits(b[1][row]),
                                backend.name() + ": lse of row " + row);
                    } else {
                        assertFalse(a[1][row] == b[1][row], backend.name() + ": row " + row + " has a count of 3");
                    }
                }
            }
            if (a.length > 2) {
                // dq of a row reads only that row's blocks: bit for bit where all its counts are 1.
                for (int h = 0; h < HEADS; h++) {
                    for (int i = 0; i < N; i += 32 * 2) {
                        for (int d = 0; d < 16; d++) {
                            int at = (h * N + i) * 16 + d;
                            assertEquals(Float.floatToRawIntBits(a[2][at]), Float.floatToRawIntBits(b[2][at]),
                                    backend.name() + ": dq of row " + (h * N + i));
                        }
                    }
                }
            }
        }
        assertTrue(checked >= 2, "reference and vector declare BLOCK_COUNTS; backends checked: " + checked);
    }

    /** Output, LSE and (when declared) dq of a fresh plan. */
    private static float[][] run(SparseAttention backend, AttentionProblem p, BlockLayout layout, Tensor q, Tensor k,
                                 Tensor v, Tensor dOut) {
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, HEADS, N, 16);
        float[] lse = new float[p.lseSize()];
        try (AttentionPlan plan = backend.plan(p, layout)) {
            plan.forward(q, k, v, out, lse);
            if (!backend.capabilities().has(Feature.BACKWARD)) {
                return new float[][] {out.data(), lse};
            }
            Tensor dq = Tensor.zeros(TensorLayout.BHSD, 1, HEADS, N, 16);
            Tensor dk = Tensor.zeros(TensorLayout.BHSD, 1, HEADS, N, 16);
            Tensor dv = Tensor.zeros(TensorLayout.BHSD, 1, HEADS, N, 16);
            plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
            return new float[][] {out.data(), lse, dq.data()};
        }
    }

    @Test
    void aBackendWithoutBlockCountsRefusesALayoutWithCounts() {
        AttentionProblem p = AttentionProblem.builder().heads(HEADS).length(N).headDim(16).build();
        BlockLayout counted = oddRowsCounted(Patterns.parse("window(block=32, blocks=3)").layout(N, N, HEADS));
        for (SparseAttention backend : backends()) {
            if (backend.capabilities().has(Feature.BLOCK_COUNTS)) {
                continue;
            }
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> backend.plan(p, counted).close(), backend.name());
            assertTrue(e.getMessage().contains("BLOCK_COUNTS") || e.getMessage().contains("block-counts"), e.getMessage());
        }
    }
}
