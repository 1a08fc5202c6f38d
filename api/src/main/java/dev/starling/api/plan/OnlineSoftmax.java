package dev.starling.api.plan;

import dev.starling.api.Tensor;
import java.util.Arrays;

/**
 * The streaming softmax of DESIGN section 2, written once: partial results over disjoint key sets
 * are folded into a running state and finished into {@code O} and {@code LSE}, with the one policy
 * for empty rows and non-finite values.
 *
 * <p>State of a row: the running maximum {@code m} of its scores, the running sum
 * {@code l = Σ exp(s_j − m)} and the unnormalised output {@code acc = Σ exp(s_j − m)·v_j}. When
 * {@code m} grows to {@code m'}, {@code l} and {@code acc} are multiplied by {@code exp(m − m')}.
 *
 * <p>The policy, element by element the float64 dense oracle's:
 * <ul>
 *   <li>a row that reads no key: {@code O = 0}, {@code LSE = −∞};</li>
 *   <li>a row whose maximum score is NaN or {@code +∞}, or whose scores are all {@code −∞}: every
 *       output feature and the LSE are NaN (the oracle's {@code exp(s − m)} is NaN there);</li>
 *   <li>otherwise a {@code −∞} score is a zero weight, and a NaN or {@code ±∞} in feature {@code d}
 *       of a value the row reads reaches feature {@code d} only (as {@code 0·∞ = NaN} where the
 *       weight is zero).</li>
 * </ul>
 * Kernels subtract {@link #shift(double)} of the running maximum before {@code exp}: the maximum
 * itself, or 0 while it is {@code −∞}, so that {@code exp(−∞ − (−∞))} never makes a NaN.
 */
public final class OnlineSoftmax {

    private OnlineSoftmax() {
    }

    /** @return the larger of {@code a} and {@code b}, NaN when either is NaN */
    public static double max(double a, double b) {
        return a != a || b != b ? Double.NaN : Math.max(a, b);
    }

    /** @return the larger of {@code a} and {@code b}, NaN when either is NaN */
    public static float max(float a, float b) {
        return a != a || b != b ? Float.NaN : Math.max(a, b);
    }

    /**
     * What a kernel subtracts from a score before {@code exp}: the running maximum, or 0 while the
     * maximum is {@code −∞} (every score so far is {@code −∞}; {@code exp(−∞ − 0) = 0}).
     *
     * @param max the running maximum
     * @return the shift
     */
    public static double shift(double max) {
        return max == Double.NEGATIVE_INFINITY ? 0.0 : max;
    }

    /**
     * Factor that moves a state kept against maximum {@code oldMax} onto {@code newMax}:
     * {@code exp(oldMax − newMax)}, and 1 when the two are equal (also when both are infinite).
     *
     * @return the factor
     */
    public static double rescale(double oldMax, double newMax) {
        return oldMax == newMax ? 1.0 : Math.exp(oldMax - newMax);
    }

    /**
     * Running state of a tile of rows. Not thread-safe: one per worker.
     */
    public static final class Rows {
        private final double[] max;
        private final double[] sum;
        private final boolean[] seen;
        private final float[] acc;
        private final int width;

        /**
         * @param rows rows of the tile
         * @param width output features per row ({@code Dv})
         */
        public Rows(int rows, int width) {
            this.max = new double[rows];
            this.sum = new double[rows];
            this.seen = new boolean[rows];
            this.acc = new float[Math.multiplyExact(rows, width)];
            this.width = width;
            reset(rows);
        }

        /** @return features per row */
        public int width() {
            return width;
        }

        /** @return the unnormalised outputs, row {@code r} at {@code [r·width, (r+1)·width)}. Kernels add into it. */
        public float[] acc() {
            return acc;
        }

        /** @return the running maximum of row {@code r} */
        public double max(int r) {
            return max[r];
        }

        /**
         * Empties the first {@code rows} rows: no key seen, {@code m = −∞}, {@code l = 0}, {@code acc = 0}.
         *
         * @param rows how many rows to reset
         */
        public void reset(int rows) {
            Arrays.fill(max, 0, rows, Double.NEGATIVE_INFINITY);
            Arrays.fill(sum, 0, rows, 0.0);
            Arrays.fill(seen, 0, rows, false);
            Arrays.fill(acc, 0, rows * width, 0f);
        }

        /**
         * Starts folding a block of scores of row {@code r} whose maximum is {@code blockMax}:
         * raises the running maximum, rescales the sum and the output row, and returns the shift
         * the kernel subtracts before {@code exp}. The kernel then adds {@code Σ exp(s − shift)}
         * with {@link #add} and {@code exp(s − shift)·v} into {@link #acc()}.
         *
         * @param r row
         * @param blockMax maximum score of the block (NaN-propagating, see {@link OnlineSoftmax#max(float, float)})
         * @return the shift for this block
         */
        public double raise(int r, double blockMax) {
            seen[r] = true;
            double old = max[r];
            double m = OnlineSoftmax.max(old, blockMax);
            if (m != old) {
                double c = rescale(old, m);
                sum[r] *= c;
                float fc = (float) c;
                for (int x = r * width, end = x + width; x < end; x++) {
                    acc[x] *= fc;
                }
                max[r] = m;
            }
            return shift(m);
        }

        /**
         * Adds {@code Σ exp(s − shift)} of the block started by {@link #raise}.
         *
         * @param r row
         * @param blockSum the block's sum
         */
        public void add(int r, double blockSum) {
            sum[r] += blockSum;
        }

        /**
         * Folds an unnormalised partial state of row {@code r} (its maximum, its sum against that
         * maximum, its output row against that maximum) into the running state.
         *
         * @param r row
         * @param partMax the partial's maximum
         * @param partSum the partial's {@code Σ exp(s − partMax)}
         * @param part holds the partial's unnormalised output row at {@code off}. Not modified.
         * @param off offset of the row in {@code part}
         */
        public void absorb(int r, double partMax, double partSum, float[] part, int off) {
            seen[r] = true;
            double old = max[r];
            double m = OnlineSoftmax.max(old, partMax);
            double keep = rescale(old, m);
            double add = rescale(partMax, m);
            sum[r] = sum[r] * keep + partSum * add;
            max[r] = m;
            float fk = (float) keep;
            float fa = (float) add;
            int a = r * width;
            for (int x = 0; x < width; x++) {
                acc[a + x] = acc[a + x] * fk + part[off + x] * fa;
            }
        }

        /**
         * Writes row {@code r}'s result: {@code O = acc / l}, {@code LSE = m + ln l}, or the policy's
         * zeros / NaN (see {@link OnlineSoftmax}).
         *
         * @param r row
         * @param out receives {@code width} floats at {@code outOff}. Modified.
         * @param outOff where the row starts in {@code out}
         * @param lse receives the row's LSE at {@code lseIndex}, or {@code null}. Modified.
         * @param lseIndex where in {@code lse}
         */
        public void finish(int r, float[] out, int outOff, float[] lse, int lseIndex) {
            float value;
            if (!seen[r]) {
                Arrays.fill(out, outOff, outOff + width, 0f);
                value = Float.NEGATIVE_INFINITY;
            } else if (!Double.isFinite(max[r])) {
                Arrays.fill(out, outOff, outOff + width, Float.NaN);
                value = Float.NaN;
            } else {
                float inv = (float) (1.0 / sum[r]);
                int a = r * width;
                for (int x = 0; x < width; x++) {
                    out[outOff + x] = acc[a + x] * inv;
                }
                value = (float) (max[r] + Math.log(sum[r]));
            }
            if (lse != null) {
                lse[lseIndex] = value;
            }
        }
    }

    /**
     * Writes the result of a row that reads no key (a padded query row, or a row whose allowed
     * set is empty): {@code O = 0}, {@code LSE = −∞}.
     *
     * @param out receives {@code width} zeros at {@code outOff}. Modified.
     * @param outOff where the row starts
     * @param width features per row
     * @param lse receives {@code −∞} at {@code lseIndex}, or {@code null}. Modified.
     * @param lseIndex where in {@code lse}
     */
    public static void empty(float[] out, int outOff, int width, float[] lse, int lseIndex) {
        Arrays.fill(out, outOff, outOff + width, 0f);
        if (lse != null) {
            lse[lseIndex] = Float.NEGATIVE_INFINITY;
        }
    }

    /**
     * Merges two normalised partial results of one row over disjoint key sets (DESIGN section 8):
     * {@code LSE = ln(e^{LSE1} + e^{LSE2})} and {@code O = e^{LSE1 − LSE}·O1 + e^{LSE2 − LSE}·O2}.
     * A partial with {@code LSE = −∞} (it read no key) contributes nothing; two such partials give
     * {@code O = 0}, {@code LSE = −∞}; a NaN LSE makes the row NaN; a NaN or {@code ±∞} feature of a
     * partial reaches that feature only. Exact for finite inputs up to rounding; for non-finite
     * inputs it equals the whole except where one partial's scores are all {@code −∞} (its
     * {@code (O, LSE)} is then NaN, where the whole may be finite).
     *
     * @param o1 first partial output, {@code width} floats at {@code off1}. Not modified (unless it is {@code out}).
     * @param off1 offset in {@code o1}
     * @param lse1 first partial LSE
     * @param o2 second partial output at {@code off2}. Not modified (unless it is {@code out}).
     * @param off2 offset in {@code o2}
     * @param lse2 second partial LSE
     * @param width features per row
     * @param out receives the merged row at {@code outOff}; may be {@code o1} or {@code o2} at the same offset. Modified.
     * @param outOff offset in {@code out}
     * @return the merged LSE
     */
    public static float merge(float[] o1, int off1, float lse1, float[] o2, int off2, float lse2, int width,
                              float[] out, int outOff) {
        double m = max(lse1, lse2);
        if (m == Double.NEGATIVE_INFINITY) {
            Arrays.fill(out, outOff, outOff + width, 0f);
            return Float.NEGATIVE_INFINITY;
        }
        if (!Double.isFinite(m)) {
            Arrays.fill(out, outOff, outOff + width, Float.NaN);
            return Float.NaN;
        }
        double w1 = Math.exp(lse1 - m);
        double w2 = Math.exp(lse2 - m);
        double total = w1 + w2;
        double a = w1 / total;
        double c = w2 / total;
        for (int x = 0; x < width; x++) {
            out[outOff + x] = (float) (a * o1[off1 + x] + c * o2[off2 + x]);
        }
        return (float) (m + Math.log(total));
    }

    /**
     * Merges two normalised partial results of a whole problem over disjoint key sets (DESIGN
     * section 8), row by row with {@link #merge(float[], int, float, float[], int, float, int, float[], int)}:
     * the primitive of split rows and of key-sharded attention. Any number of partials merge by
     * folding them in one at a time, in any order.
     *
     * @param o1 first partial {@code O [B, H, N, Dv]}. Not modified (unless it is {@code out}).
     * @param lse1 its {@code LSE [B, H, N]}. Not modified (unless it is {@code lse}).
     * @param o2 second partial, same shape (either layout). Not modified (unless it is {@code out}).
     * @param lse2 its LSE. Not modified (unless it is {@code lse}).
     * @param out the merged output, same shape; may be {@code o1} or {@code o2}. Modified.
     * @param lse the merged LSE; may be {@code lse1} or {@code lse2}. Modified.
     * @throws IllegalArgumentException when a shape or LSE length differs, naming both
     */
    public static void merge(Tensor o1, float[] lse1, Tensor o2, float[] lse2, Tensor out, float[] lse) {
        checkPartial("o2", o2, o1);
        checkPartial("out", out, o1);
        long rows = (long) o1.batch() * o1.heads() * o1.length();
        checkLse("lse1", lse1, rows, o1);
        checkLse("lse2", lse2, rows, o1);
        checkLse("lse", lse, rows, o1);
        if ((out.overlaps(o1) && !sameView(out, o1)) || (out.overlaps(o2) && !sameView(out, o2))) {
            throw new IllegalArgumentException("out may share its array with a partial only as the same view (same "
                    + "layout, strides and start)");
        }
        if (!plain(o1) || !plain(o2) || !plain(out)) {
            // Views of other types or storage: merge float32 copies, then write out once (rounding there).
            Tensor merged = Tensor.zeros(out.layout(), out.batch(), out.heads(), out.length(), out.dim());
            merge(o1.toFloat32(), lse1, o2.toFloat32(), lse2, merged, lse);
            out.copyFrom(merged);
            return;
        }
        int width = o1.dim();
        int row = 0;
        for (int b = 0; b < o1.batch(); b++) {
            for (int h = 0; h < o1.heads(); h++) {
                for (int n = 0; n < o1.length(); n++, row++) {
                    lse[row] = merge(o1.data(), o1.offset(b, h, n), lse1[row], o2.data(), o2.offset(b, h, n),
                            lse2[row], width, out.data(), out.offset(b, h, n));
                }
            }
        }
    }

    private static void checkPartial(String name, Tensor t, Tensor o1) {
        if (t == null || o1 == null) {
            throw new IllegalArgumentException("partial outputs must not be null");
        }
        if (t.batch() != o1.batch() || t.heads() != o1.heads() || t.length() != o1.length() || t.dim() != o1.dim()) {
            throw new IllegalArgumentException(name + " is " + t.describe() + " but o1 is " + o1.describe());
        }
    }

    private static void checkLse(String name, float[] lse, long rows, Tensor o1) {
        if (lse == null || lse.length != rows) {
            throw new IllegalArgumentException(name + " has " + (lse == null ? "no" : String.valueOf(lse.length))
                    + " floats but o1 " + o1.describe() + " has " + rows + " rows");
        }
    }

    private static boolean plain(Tensor t) {
        return t.type() == dev.starling.api.ElementType.FP32 && t.onHeap() && t.rowsContiguous();
    }

    private static boolean sameView(Tensor a, Tensor b) {
        return a.start() == b.start() && java.util.Arrays.equals(a.strides(), b.strides()) && a.type() == b.type();
    }
}
