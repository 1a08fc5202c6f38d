package dev.starling.backend.vector;

import dev.starling.api.Tensor;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused micro-kernel: one query block (up to {@code qBlock} rows) against its key blocks, one
 * key block at a time, with the streaming softmax of {@link OnlineSoftmax}. The only class that
 * touches the Vector API; it is loaded only when {@code jdk.incubator.vector} is present.
 *
 * <p>Per key block of {@code n} keys (row {@code r} reads the prefix {@code [0, ends[r])} of them,
 * as the {@link TokenMask} says):
 * <ol>
 *   <li>{@code S = Q'·Kᵀ} with {@code Q' = s·Q} ({@code [rows][D]}, zero-padded to a multiple of
 *       {@value #ROWS} rows) and the key block packed transposed, {@code Kᵀ [D][kbp]} (zero-padded to
 *       a multiple of the lane count {@code L}): register tiles of {@value #ROWS} rows × 4 vectors of
 *       keys, {@code D} fused multiply-adds deep;</li>
 *   <li>per row, over its own keys only: block maximum, new running maximum {@code m'}, then
 *       {@code p = exp(S − shift(m'))} (vector {@code EXP}) and {@code l = l·exp(m − m') + Σ p};
 *       the rescale factors {@code exp(m − m')} of all rows in one vector pass;</li>
 *   <li>{@code acc = acc·exp(m − m') + P·V}, {@code V [n][Dv]} row-major with stride
 *       {@code vStride} (the tensor itself, or a zero-padded copy when {@code Dv % L != 0}):
 *       register tiles of {@value #ROWS} rows × 4 vectors of features over the keys every row of the
 *       tile reads, then row by row over each row's remaining keys (only causal-diagonal and
 *       partial blocks have any), so no row ever multiplies a value it does not read (a {@code 0·NaN}
 *       would leak).</li>
 * </ol>
 * Every {@code Vector} lives and dies inside one method (a vector crossing a call the JIT does not
 * inline is boxed, about 20× slower). One instance per worker: not thread-safe.
 */
final class TileKernel {
    /** The vector shape, chosen once: the widest the CPU runs well. */
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** Floats per vector, {@code L}. */
    static final int LANES = SPECIES.length();
    /** Query rows per register tile. */
    static final int ROWS = 4;

    private static final VectorOperators.Associative MAX = VectorOperators.MAX;
    private static final VectorOperators.Unary EXP = VectorOperators.EXP;
    private static final VectorOperators.Associative ADD = VectorOperators.ADD;

    private final int dim;
    private final int vdim;
    private final int vdp;
    private final int kbp;
    private final int rowCap;

    private final float[] qTile;
    private final float[] scores;
    private final float[] acc;
    private final float[] max;
    private final float[] newMax;
    private final float[] alpha;
    private final float[] shift;
    private final double[] sum;
    private final boolean[] seen;
    private final int[] ends;
    private final OnlineSoftmax.Rows state;

    /**
     * Scratch for query blocks of up to {@code qRows} rows and key blocks of up to {@code kbp} keys.
     *
     * @param dim {@code D}
     * @param vdim {@code Dv}
     * @param qRows most rows of a query block
     * @param kbp packed key block width, a multiple of {@link #LANES}
     */
    TileKernel(int dim, int vdim, int qRows, int kbp) {
        this.dim = dim;
        this.vdim = vdim;
        this.vdp = padLanes(vdim);
        this.kbp = kbp;
        this.rowCap = roundUp(qRows, Math.max(ROWS, LANES));
        this.qTile = new float[Math.multiplyExact(rowCap, dim)];
        this.scores = new float[Math.multiplyExact(rowCap, kbp)];
        this.acc = new float[Math.multiplyExact(rowCap, vdp)];
        this.max = new float[rowCap];
        this.newMax = new float[rowCap];
        this.alpha = new float[rowCap];
        this.shift = new float[rowCap];
        this.sum = new double[rowCap];
        this.seen = new boolean[rowCap];
        this.ends = new int[rowCap];
        this.state = new OnlineSoftmax.Rows(qRows, vdim);
    }

    /** @return the vector shape, for {@code starling backends} */
    static String describe() {
        return "Java Vector API, " + SPECIES.vectorBitSize() + "-bit vectors (" + LANES + " floats)";
    }

    /** @return {@code n} rounded up to a multiple of {@link #LANES} */
    static int padLanes(int n) {
        return roundUp(n, LANES);
    }

    private static int roundUp(int n, int m) {
        return Math.toIntExact(((long) n + m - 1) / m * m);
    }

    /**
     * Starts a query block: loads {@code Q' = s·Q[b, h, i0 .. i0+rows)} zero-padded to whole tiles
     * and empties the running state ({@code m = −∞}, {@code l = 0}, {@code acc = 0}, nothing seen).
     *
     * @param q queries. Not modified.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param rows valid rows, {@code <= qRows}
     * @param scale {@code s}
     */
    void begin(Tensor q, int b, int h, int i0, int rows, float scale) {
        int tiles = roundUp(Math.max(rows, 1), ROWS);
        float[] qd = q.data();
        int stride = q.rowStride();
        int base = q.offset(b, h, i0);
        for (int r = 0; r < rows; r++) {
            int src = base + r * stride;
            int dst = r * dim;
            for (int d = 0; d < dim; d++) {
                qTile[dst + d] = qd[src + d] * scale;
            }
        }
        Arrays.fill(qTile, rows * dim, tiles * dim, 0f);
        Arrays.fill(acc, 0, tiles * vdp, 0f);
        Arrays.fill(max, Float.NEGATIVE_INFINITY);
        Arrays.fill(newMax, Float.NEGATIVE_INFINITY);
        Arrays.fill(sum, 0.0);
        Arrays.fill(seen, false);
    }

    /**
     * Sets each row's key range in key block {@code kb}: {@code ends[r] = keyEnd(b, i0 + r, kb) − j0}
     * (at least 0), or {@code n} for every row when the block is uniform.
     *
     * @param mask the plan's token mask
     * @param b batch entry
     * @param qb query block
     * @param kb key block
     * @param i0 first row of the query block
     * @param rows valid rows
     * @param j0 first key of the block
     * @param n keys some row reads, {@code blockKeyEnd(b, qb, kb) − j0}
     */
    void setEnds(TokenMask mask, int b, int qb, int kb, int i0, int rows, int j0, int n) {
        if (mask.uniform(b, qb, kb)) {
            Arrays.fill(ends, 0, rows, n);
        } else {
            for (int r = 0; r < rows; r++) {
                ends[r] = Math.max(0, mask.keyEnd(b, i0 + r, kb) - j0);
            }
        }
    }

    /**
     * Folds one key block into the running state of the current query block (after
     * {@link #setEnds}).
     *
     * @param kT the packed keys; this block's {@code Kᵀ [D][kbp]} starts at {@code kBase}. Not modified.
     * @param kBase where the block starts in {@code kT}
     * @param vd the values; key {@code jj} of the block at {@code vBase + jj·vStride}, {@code vdp} floats readable. Not modified.
     * @param vBase where the block's first value row starts
     * @param vStride floats between value rows
     * @param n keys some row reads ({@code max(ends) <= n <= kbp})
     * @param rows valid rows
     */
    void block(float[] kT, int kBase, float[] vd, int vBase, int vStride, int n, int rows) {
        int tiles = roundUp(rows, ROWS);
        scores(kT, kBase, padLanes(n), tiles);
        softmax(rows);
        accumulate(vd, vBase, vStride, rows);
    }

    /** {@code scores[r][c] = Σ_d qTile[r][d]·kT[d][c]} for {@code r < tiles}, {@code c < cols} (both padded). */
    private void scores(float[] kT, int kBase, int cols, int tiles) {
        final float[] qt = qTile;
        final float[] s = scores;
        final int dim = this.dim;
        final int kbp = this.kbp;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        for (int r0 = 0; r0 < tiles; r0 += ROWS) {
            final int q0 = r0 * dim;
            final int q1 = q0 + dim;
            final int q2 = q1 + dim;
            final int q3 = q2 + dim;
            final int s0 = r0 * kbp;
            final int s1 = s0 + kbp;
            final int s2 = s1 + kbp;
            final int s3 = s2 + kbp;
            int c = 0;
            for (; c + 4 * LANES <= cols; c += 4 * LANES) {
                FloatVector a00 = FloatVector.zero(SPECIES);
                FloatVector a01 = a00;
                FloatVector a02 = a00;
                FloatVector a03 = a00;
                FloatVector a10 = a00;
                FloatVector a11 = a00;
                FloatVector a12 = a00;
                FloatVector a13 = a00;
                FloatVector a20 = a00;
                FloatVector a21 = a00;
                FloatVector a22 = a00;
                FloatVector a23 = a00;
                FloatVector a30 = a00;
                FloatVector a31 = a00;
                FloatVector a32 = a00;
                FloatVector a33 = a00;
                int kp = kBase + c;
                for (int d = 0; d < dim; d++, kp += kbp) {
                    FloatVector k0 = FloatVector.fromArray(SPECIES, kT, kp);
                    FloatVector k1 = FloatVector.fromArray(SPECIES, kT, kp + l1);
                    FloatVector k2 = FloatVector.fromArray(SPECIES, kT, kp + l2);
                    FloatVector k3 = FloatVector.fromArray(SPECIES, kT, kp + l3);
                    FloatVector b = FloatVector.broadcast(SPECIES, qt[q0 + d]);
                    a00 = k0.fma(b, a00);
                    a01 = k1.fma(b, a01);
                    a02 = k2.fma(b, a02);
                    a03 = k3.fma(b, a03);
                    b = FloatVector.broadcast(SPECIES, qt[q1 + d]);
                    a10 = k0.fma(b, a10);
                    a11 = k1.fma(b, a11);
                    a12 = k2.fma(b, a12);
                    a13 = k3.fma(b, a13);
                    b = FloatVector.broadcast(SPECIES, qt[q2 + d]);
                    a20 = k0.fma(b, a20);
                    a21 = k1.fma(b, a21);
                    a22 = k2.fma(b, a22);
                    a23 = k3.fma(b, a23);
                    b = FloatVector.broadcast(SPECIES, qt[q3 + d]);
                    a30 = k0.fma(b, a30);
                    a31 = k1.fma(b, a31);
                    a32 = k2.fma(b, a32);
                    a33 = k3.fma(b, a33);
                }
                a00.intoArray(s, s0 + c);
                a01.intoArray(s, s0 + c + l1);
                a02.intoArray(s, s0 + c + l2);
                a03.intoArray(s, s0 + c + l3);
                a10.intoArray(s, s1 + c);
                a11.intoArray(s, s1 + c + l1);
                a12.intoArray(s, s1 + c + l2);
                a13.intoArray(s, s1 + c + l3);
                a20.intoArray(s, s2 + c);
                a21.intoArray(s, s2 + c + l1);
                a22.intoArray(s, s2 + c + l2);
                a23.intoArray(s, s2 + c + l3);
                a30.intoArray(s, s3 + c);
                a31.intoArray(s, s3 + c + l1);
                a32.intoArray(s, s3 + c + l2);
                a33.intoArray(s, s3 + c + l3);
            }
            for (; c < cols; c += LANES) {
                FloatVector a0 = FloatVector.zero(SPECIES);
                FloatVector a1 = a0;
                FloatVector a2 = a0;
                FloatVector a3 = a0;
                int kp = kBase + c;
                for (int d = 0; d < dim; d++, kp += kbp) {
                    FloatVector k0 = FloatVector.fromArray(SPECIES, kT, kp);
                    a0 = k0.fma(FloatVector.broadcast(SPECIES, qt[q0 + d]), a0);
                    a1 = k0.fma(FloatVector.broadcast(SPECIES, qt[q1 + d]), a1);
                    a2 = k0.fma(FloatVector.broadcast(SPECIES, qt[q2 + d]), a2);
                    a3 = k0.fma(FloatVector.broadcast(SPECIES, qt[q3 + d]), a3);
                }
                a0.intoArray(s, s0 + c);
                a1.intoArray(s, s1 + c);
                a2.intoArray(s, s2 + c);
                a3.intoArray(s, s3 + c);
            }
        }
    }

    /**
     * The online-softmax step of each valid row over its own keys {@code [0, ends[r])}: raises the
     * running maximum (NaN-propagating), turns the scores into {@code p = exp(S − shift)} in place
     * and updates {@code l}; leaves {@code alpha[r] = exp(m − m')} (1 when {@code m = m'}) for
     * {@link #accumulate}. A row that reads no key of the block keeps {@code m' = m}, so its alpha is 1.
     */
    private void softmax(int rows) {
        final float[] s = scores;
        final int kbp = this.kbp;
        final FloatVector negInf = FloatVector.broadcast(SPECIES, Float.NEGATIVE_INFINITY);
        for (int r = 0; r < rows; r++) {
            int n = ends[r];
            if (n <= 0) {
                continue;
            }
            seen[r] = true;
            int off = r * kbp;
            FloatVector mv = negInf;
            int jj = 0;
            for (; jj + LANES <= n; jj += LANES) {
                mv = mv.lanewise(MAX, FloatVector.fromArray(SPECIES, s, off + jj));
            }
            if (jj < n) {
                VectorMask<Float> tail = SPECIES.indexInRange(jj, n);
                mv = mv.lanewise(MAX, FloatVector.fromArray(SPECIES, s, off + jj), tail);
            }
            newMax[r] = OnlineSoftmax.max(max[r], mv.reduceLanes(MAX));
        }
        // Rescale factors and shifts of every row at once; padded rows have m = m' = −∞ (alpha 1).
        for (int r = 0; r < rowCap; r += LANES) {
            FloatVector m = FloatVector.fromArray(SPECIES, max, r);
            FloatVector mNew = FloatVector.fromArray(SPECIES, newMax, r);
            m.sub(mNew).lanewise(EXP).blend(1f, m.eq(mNew)).intoArray(alpha, r);
            mNew.blend(0f, mNew.eq(negInf)).intoArray(shift, r);
            mNew.intoArray(max, r);
        }
        for (int r = 0; r < rows; r++) {
            int n = ends[r];
            if (n <= 0) {
                continue;
            }
            int off = r * kbp;
            FloatVector sh = FloatVector.broadcast(SPECIES, shift[r]);
            FloatVector total = FloatVector.zero(SPECIES);
            int jj = 0;
            for (; jj + LANES <= n; jj += LANES) {
                FloatVector p = FloatVector.fromArray(SPECIES, s, off + jj).sub(sh).lanewise(EXP);
                p.intoArray(s, off + jj);
                total = total.add(p);
            }
            if (jj < n) {
                // The row is padded to kbp >= padLanes(n): the lanes past n are computed and ignored.
                VectorMask<Float> tail = SPECIES.indexInRange(jj, n);
                FloatVector p = FloatVector.fromArray(SPECIES, s, off + jj).sub(sh).lanewise(EXP);
                p.intoArray(s, off + jj);
                total = total.add(p, tail);
            }
            sum[r] = sum[r] * alpha[r] + total.reduceLanes(ADD);
        }
    }

    /**
     * {@code acc[r] = alpha[r]·acc[r] + Σ_{jj < ends[r]} p[r][jj]·V[jj]}: register tiles over the
     * keys every valid row of the tile reads, then each row's remaining keys on their own.
     */
    private void accumulate(float[] vd, int vBase, int vStride, int rows) {
        final float[] s = scores;
        final float[] o = acc;
        final int kbp = this.kbp;
        final int vdp = this.vdp;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        for (int r0 = 0; r0 < rows; r0 += ROWS) {
            int valid = Math.min(ROWS, rows - r0);
            int common = Integer.MAX_VALUE;
            int most = 0;
            for (int x = 0; x < valid; x++) {
                common = Math.min(common, ends[r0 + x]);
                most = Math.max(most, ends[r0 + x]);
            }
            final int s0 = r0 * kbp;
            final int s1 = s0 + kbp;
            final int s2 = s1 + kbp;
            final int s3 = s2 + kbp;
            final int o0 = r0 * vdp;
            final int o1 = o0 + vdp;
            final int o2 = o1 + vdp;
            final int o3 = o2 + vdp;
            final float al0 = alpha[r0];
            final float al1 = alpha[r0 + 1];
            final float al2 = alpha[r0 + 2];
            final float al3 = alpha[r0 + 3];
            int c = 0;
            for (; c + 4 * LANES <= vdp; c += 4 * LANES) {
                FloatVector c00 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(al0);
                FloatVector c01 = FloatVector.fromArray(SPECIES, o, o0 + c + l1).mul(al0);
                FloatVector c02 = FloatVector.fromArray(SPECIES, o, o0 + c + l2).mul(al0);
                FloatVector c03 = FloatVector.fromArray(SPECIES, o, o0 + c + l3).mul(al0);
                FloatVector c10 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(al1);
                FloatVector c11 = FloatVector.fromArray(SPECIES, o, o1 + c + l1).mul(al1);
                FloatVector c12 = FloatVector.fromArray(SPECIES, o, o1 + c + l2).mul(al1);
                FloatVector c13 = FloatVector.fromArray(SPECIES, o, o1 + c + l3).mul(al1);
                FloatVector c20 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(al2);
                FloatVector c21 = FloatVector.fromArray(SPECIES, o, o2 + c + l1).mul(al2);
                FloatVector c22 = FloatVector.fromArray(SPECIES, o, o2 + c + l2).mul(al2);
                FloatVector c23 = FloatVector.fromArray(SPECIES, o, o2 + c + l3).mul(al2);
                FloatVector c30 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(al3);
                FloatVector c31 = FloatVector.fromArray(SPECIES, o, o3 + c + l1).mul(al3);
                FloatVector c32 = FloatVector.fromArray(SPECIES, o, o3 + c + l2).mul(al3);
                FloatVector c33 = FloatVector.fromArray(SPECIES, o, o3 + c + l3).mul(al3);
                int vp = vBase + c;
                for (int jj = 0; jj < common; jj++, vp += vStride) {
                    FloatVector v0 = FloatVector.fromArray(SPECIES, vd, vp);
                    FloatVector v1 = FloatVector.fromArray(SPECIES, vd, vp + l1);
                    FloatVector v2 = FloatVector.fromArray(SPECIES, vd, vp + l2);
                    FloatVector v3 = FloatVector.fromArray(SPECIES, vd, vp + l3);
                    FloatVector p = FloatVector.broadcast(SPECIES, s[s0 + jj]);
                    c00 = v0.fma(p, c00);
                    c01 = v1.fma(p, c01);
                    c02 = v2.fma(p, c02);
                    c03 = v3.fma(p, c03);
                    p = FloatVector.broadcast(SPECIES, s[s1 + jj]);
                    c10 = v0.fma(p, c10);
                    c11 = v1.fma(p, c11);
                    c12 = v2.fma(p, c12);
                    c13 = v3.fma(p, c13);
                    p = FloatVector.broadcast(SPECIES, s[s2 + jj]);
                    c20 = v0.fma(p, c20);
                    c21 = v1.fma(p, c21);
                    c22 = v2.fma(p, c22);
                    c23 = v3.fma(p, c23);
                    p = FloatVector.broadcast(SPECIES, s[s3 + jj]);
                    c30 = v0.fma(p, c30);
                    c31 = v1.fma(p, c31);
                    c32 = v2.fma(p, c32);
                    c33 = v3.fma(p, c33);
                }
                c00.intoArray(o, o0 + c);
                c01.intoArray(o, o0 + c + l1);
                c02.intoArray(o, o0 + c + l2);
                c03.intoArray(o, o0 + c + l3);
                c10.intoArray(o, o1 + c);
                c11.intoArray(o, o1 + c + l1);
                c12.intoArray(o, o1 + c + l2);
                c13.intoArray(o, o1 + c + l3);
                c20.intoArray(o, o2 + c);
                c21.intoArray(o, o2 + c + l1);
                c22.intoArray(o, o2 + c + l2);
                c23.intoArray(o, o2 + c + l3);
                c30.intoArray(o, o3 + c);
                c31.intoArray(o, o3 + c + l1);
                c32.intoArray(o, o3 + c + l2);
                c33.intoArray(o, o3 + c + l3);
            }
            for (; c < vdp; c += LANES) {
                FloatVector c0 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(al0);
                FloatVector c1 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(al1);
                FloatVector c2 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(al2);
                FloatVector c3 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(al3);
                int vp = vBase + c;
                for (int jj = 0; jj < common; jj++, vp += vStride) {
                    FloatVector v0 = FloatVector.fromArray(SPECIES, vd, vp);
                    c0 = v0.fma(FloatVector.broadcast(SPECIES, s[s0 + jj]), c0);
                    c1 = v0.fma(FloatVector.broadcast(SPECIES, s[s1 + jj]), c1);
                    c2 = v0.fma(FloatVector.broadcast(SPECIES, s[s2 + jj]), c2);
                    c3 = v0.fma(FloatVector.broadcast(SPECIES, s[s3 + jj]), c3);
                }
                c0.intoArray(o, o0 + c);
                c1.intoArray(o, o1 + c);
                c2.intoArray(o, o2 + c);
                c3.intoArray(o, o3 + c);
            }
            if (most > common) {
                for (int x = 0; x < valid; x++) {
                    int sr = s0 + x * kbp;
                    int or = o0 + x * vdp;
                    for (int jj = common, end = ends[r0 + x]; jj < end; jj++) {
                        FloatVector p = FloatVector.broadcast(SPECIES, s[sr + jj]);
                        int vp = vBase + jj * vStride;
                        for (int cc = 0; cc < vdp; cc += LANES) {
                            FloatVector.fromArray(SPECIES, vd, vp + cc).fma(p, FloatVector.fromArray(SPECIES, o, or + cc))
                                    .intoArray(o, or + cc);
                        }
                    }
                }
            }
        }
    }

    /**
     * Writes the current query block's rows: {@code O = acc / l} and {@code LSE = m + ln l} through
     * {@link OnlineSoftmax.Rows#finish} (its policy for empty and non-finite rows), and
     * {@code O = 0}, {@code LSE = −∞} for the padded rows {@code [rows, total)}.
     *
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified: rows {@code i0 .. i0+total)} of {@code (b, h)}.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param total rows of the query block
     * @param rows valid rows
     * @param lse {@code [B, Hq, Nq]} or {@code null}. Modified likewise.
     * @param lseBase index of row {@code i0} in {@code lse}
     */
    void finish(Tensor out, int b, int h, int i0, int total, int rows, float[] lse, int lseBase) {
        state.reset(rows);
        float[] od = out.data();
        int stride = out.rowStride();
        int base = out.offset(b, h, i0);
        for (int r = 0; r < total; r++) {
            if (r < rows) {
                if (seen[r]) {
                    state.absorb(r, max[r], sum[r], acc, r * vdp);
                }
                state.finish(r, od, base + r * stride, lse, lseBase + r);
            } else {
                OnlineSoftmax.empty(od, base + r * stride, vdim, lse, lseBase + r);
            }
        }
    }

    /**
     * Saves the current query block's unnormalised state (a part of a split row) for
     * {@link #finishSplit}: row {@code r} at index {@code base + r} of the scalar arrays and at
     * {@code (base + r)·Dv} of {@code partAcc}.
     *
     * @param partMax running maxima. Modified.
     * @param partSum running sums. Modified.
     * @param partSeen whether the row read any key. Modified.
     * @param partAcc unnormalised outputs. Modified.
     * @param base first row's index
     * @param rows valid rows
     */
    void save(float[] partMax, double[] partSum, boolean[] partSeen, float[] partAcc, int base, int rows) {
        for (int r = 0; r < rows; r++) {
            partMax[base + r] = max[r];
            partSum[base + r] = sum[r];
            partSeen[base + r] = seen[r];
            System.arraycopy(acc, r * vdp, partAcc, (base + r) * vdim, vdim);
        }
    }

    /**
     * Merges the saved parts of a split row exactly ({@link OnlineSoftmax.Rows#absorb}) and writes
     * it like {@link #finish}.
     *
     * @param partMax, partSum, partSeen, partAcc the saved parts ({@link #save}). Not modified.
     * @param firstBase index of row 0 of the first part; part {@code x} starts {@code x·partStride} later
     * @param parts number of parts
     * @param partStride rows between parts
     * @param out output. Modified: the rows of the query block.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param total rows of the query block
     * @param rows valid rows
     * @param lse LSE or {@code null}. Modified likewise.
     * @param lseBase index of row {@code i0} in {@code lse}
     */
    void finishSplit(float[] partMax, double[] partSum, boolean[] partSeen, float[] partAcc, int firstBase, int parts,
                     int partStride, Tensor out, int b, int h, int i0, int total, int rows, float[] lse, int lseBase) {
        state.reset(rows);
        float[] od = out.data();
        int stride = out.rowStride();
        int base = out.offset(b, h, i0);
        for (int r = 0; r < total; r++) {
            if (r < rows) {
                for (int x = 0; x < parts; x++) {
                    int at = firstBase + x * partStride + r;
                    if (partSeen[at]) {
                        state.absorb(r, partMax[at], partSum[at], partAcc, at * vdim);
                    }
                }
                state.finish(r, od, base + r * stride, lse, lseBase + r);
            } else {
                OnlineSoftmax.empty(od, base + r * stride, vdim, lse, lseBase + r);
            }
        }
    }
}
