package dev.starling.backend.vector.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The per-row and per-key scans before the backward sweep, vectorised: they read every input once,
 * so a scalar loop (a chain of dependent additions per row) would cost a few percent of the pass.
 */
public final class RowScan {
    private static final VectorSpecies<Float> SPECIES = TileKernel.SPECIES;
    private static final int LANES = TileKernel.LANES;

    /** Length of the {@code result} array of {@link #row}. */
    public static final int RESULT_LENGTH = 2 + LANES;

    private RowScan() {
    }

    /**
     * {@code D = Σ dO·O} of one row, and whether it can run on the fast path.
     *
     * @param q the row's query at {@code q[qo .. qo + dim)}. Not modified.
     * @param qo its offset
     * @param dim {@code D}
     * @param g its output gradient at {@code g[go .. go + vdim)}. Not modified.
     * @param go its offset
     * @param o its output at {@code o[oo .. oo + vdim)}. Not modified.
     * @param oo its offset
     * @param vdim {@code Dv}
     * @param result receives {@code D} at 0 (NaN when {@code q}, {@code dO} or {@code O} holds a
     *               non-finite value, or the products overflow), and at 1 {@code 1} when {@code dO = 0}
     *               ({@code 0} otherwise); the rest is scratch. Length {@link #RESULT_LENGTH}. Modified.
     */
    public static void row(float[] q, int qo, int dim, float[] g, int go, float[] o, int oo, int vdim, float[] result) {
        FloatVector zero = FloatVector.zero(SPECIES);
        // x·0 is 0 for finite x and NaN for NaN and ±∞.
        FloatVector bad = zero;
        int d = 0;
        for (; d + LANES <= dim; d += LANES) {
            bad = bad.add(FloatVector.fromArray(SPECIES, q, qo + d).mul(0f));
        }
        float tail = 0f;
        for (; d < dim; d++) {
            tail += q[qo + d] * 0f;
        }
        FloatVector dot = zero;
        FloatVector big = zero;
        int f = 0;
        for (; f + LANES <= vdim; f += LANES) {
            FloatVector x = FloatVector.fromArray(SPECIES, g, go + f);
            dot = x.fma(FloatVector.fromArray(SPECIES, o, oo + f), dot);
            big = big.max(x.abs());
        }
        float dotTail = 0f;
        float bigTail = 0f;
        for (; f < vdim; f++) {
            dotTail += g[go + f] * o[oo + f];
            bigTail = Math.max(bigTail, Math.abs(g[go + f]));
        }
        // Lanes summed in a fixed order, by hand: reduceLanes(ADD) may associate differently when
        // compiled than interpreted, and D must have the same bits on every call.
        dot.intoArray(result, 2);
        float delta = 0f;
        for (int x = 2; x < 2 + LANES; x++) {
            delta += result[x];
        }
        delta += dotTail;
        float check = bad.reduceLanes(VectorOperators.ADD) + tail;
        result[0] = Float.isFinite(delta) && check == 0f ? delta : Float.NaN;
        // NaN in dO makes delta NaN above; max skips it, which is fine: the row is tainted then.
        result[1] = Math.max(big.reduceLanes(VectorOperators.MAX), bigTail) == 0f ? 1f : 0f;
    }

    /**
     * @param a values. Not modified.
     * @param off first index
     * @param n how many
     * @return whether {@code a[off .. off + n)} are all finite
     */
    public static boolean finite(float[] a, int off, int n) {
        FloatVector bad = FloatVector.zero(SPECIES);
        int d = 0;
        for (; d + LANES <= n; d += LANES) {
            bad = bad.add(FloatVector.fromArray(SPECIES, a, off + d).mul(0f));
        }
        float tail = 0f;
        for (; d < n; d++) {
            tail += a[off + d] * 0f;
        }
        return bad.reduceLanes(VectorOperators.ADD) + tail == 0f;
    }
}
