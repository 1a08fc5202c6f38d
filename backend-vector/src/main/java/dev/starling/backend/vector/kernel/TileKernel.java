package dev.starling.backend.vector.kernel;

import dev.starling.api.Tensor;
import dev.starling.api.plan.OnlineSoftmax;
import dev.starling.api.plan.TokenMask;
import dev.starling.backend.vector.AttentionKernel;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused micro-kernel: one query block of up to {@code qRows} rows against its key blocks, one
 * key block at a time, with the streaming softmax of {@link OnlineSoftmax}. The only class that
 * touches the Vector API; it is loaded only when {@code jdk.incubator.vector} is present.
 *
 * <p>Query rows are the vector lanes: a query block is {@code RV = ⌈rows / L⌉} row vectors of
 * {@code L} lanes ({@code L = 16} floats with AVX-512), so the softmax runs down the key axis with
 * no horizontal reductions, and keys and values are read in place from the tensors (one scalar
 * broadcast per key feature), whatever {@code D}, {@code Dv} and the layout. Per key block of
 * {@code n} keys, row {@code r} reading the prefix {@code [0, ends[r])} of them as the
 * {@link TokenMask} says:
 * <ol>
 *   <li>{@code Sᵀ [n][rows] = K·Q'ᵀ} with {@code Q'ᵀ = s·Qᵀ [D][rowCap]} (transposed once per
 *       query block, zero-padded): register tiles of 4 row vectors × 4 keys (64 rows × 4 keys
 *       with AVX-512), {@code D} fused multiply-adds deep;</li>
 *   <li>the online softmax, lane-wise: keys a row does not read set to {@code −∞} (only partial
 *       and causal-diagonal blocks), block maximum, new running maximum {@code m'}, rescale
 *       factors {@code α = exp(m − m')}, {@code p = exp(S − shift(m'))} with an inlined
 *       polynomial {@code exp} (relative error about 2e-7), {@code l = α·l + Σ p};</li>
 *   <li>{@code accᵀ [Dv][rowCap] = α·accᵀ + Vᵀ·Pᵀ}: register tiles of 4 row vectors × 4
 *       features; keys that only some rows of the block read are added under a lane mask, so no
 *       row ever multiplies a value it does not read (a {@code 0·NaN} would leak).</li>
 * </ol>
 * Every {@code Vector} lives and dies inside one method (a vector crossing a call the JIT does not
 * inline is boxed, about 20× slower). One instance per worker: not thread-safe.
 *
 * <p>This package holds the only code that imports {@code jdk.incubator.vector}; the rest of the
 * module names it only inside method bodies, so it loads (and its Javadoc builds) without the module.
 */
public final class TileKernel implements AttentionKernel {
    /** The vector shape, chosen once: the widest the CPU runs well. */
    public static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** Floats per vector, {@code L}. */
    public static final int LANES = SPECIES.length();

    private static final VectorOperators.Associative MAX = VectorOperators.MAX;

    // The exp of softmax(): see there. Coefficients fitted (minimax relative error) on [−ln2/2, ln2/2].
    static final FloatVector LOG2E = FloatVector.broadcast(SPECIES, 1.44269504088896341f);
    static final FloatVector ROUND = FloatVector.broadcast(SPECIES, 12582912f);
    static final FloatVector NEG_LN2 = FloatVector.broadcast(SPECIES, -0.693147180559945309f);
    static final float EXP_LOW = -110f;
    /** Bits of {@code 1.5·2^23 + k} are {@code 0x4B400000 + k}; {@code k + 64 + 127} is the biased exponent of {@code 2^(k+64)}. */
    static final int EXP_BIAS = 64 + 127 - 0x4B400000;
    static final FloatVector E0 = FloatVector.broadcast(SPECIES, 1.0000001192092896f * 0x1p-64f);
    static final FloatVector E1 = FloatVector.broadcast(SPECIES, 0.9999997019767761f * 0x1p-64f);
    static final FloatVector E2 = FloatVector.broadcast(SPECIES, 0.4999881982803345f * 0x1p-64f);
    static final FloatVector E3 = FloatVector.broadcast(SPECIES, 0.16667574644088745f * 0x1p-64f);
    static final FloatVector E4 = FloatVector.broadcast(SPECIES, 0.04192250594496727f * 0x1p-64f);
    static final FloatVector E5 = FloatVector.broadcast(SPECIES, 0.00830034725368023f * 0x1p-64f);

    private final int dim;
    private final int vdim;
    /** Rows padded to whole vectors: the row stride of every transposed array. */
    private final int rowCap;
    /** Row vectors, {@code rowCap / L}. */
    private final int rowVectors;

    /** {@code Q'ᵀ [D][rowCap]}. */
    private final float[] qT;
    /** {@code Sᵀ}, then {@code Pᵀ} {@code [kBlock][rowCap]}. */
    private final float[] sT;
    /** Unnormalised {@code Oᵀ [Dv][rowCap]}. */
    private final float[] accT;
    private final float[] max;
    private final float[] alpha;
    private final float[] blockSum;
    /** {@code ends[r]} as floats (0 for padded rows), compared with key indices in masks. */
    private final float[] endsF;
    private final double[] sum;
    private final boolean[] seen;
    private final int[] ends;
    private final float[] row;
    private final OnlineSoftmax.Rows state;
    private final int kChunk;
    private int rows;

    /**
     * Scratch for up to {@code qRows} query rows at a time and key chunks of up to {@code kRows} keys.
     *
     * @param dim {@code D}
     * @param vdim {@code Dv}
     * @param qRows most rows at a time
     * @param kRows most keys at a time
     */
    public TileKernel(int dim, int vdim, int qRows, int kRows) {
        this.dim = dim;
        this.vdim = vdim;
        this.kChunk = kRows;
        this.rowCap = Math.toIntExact(((long) qRows + LANES - 1) / LANES * LANES);
        this.rowVectors = rowCap / LANES;
        this.qT = new float[Math.multiplyExact(dim, rowCap)];
        this.sT = new float[Math.multiplyExact(kRows, rowCap)];
        this.accT = new float[Math.multiplyExact(vdim, rowCap)];
        this.max = new float[rowCap];
        this.alpha = new float[rowCap];
        this.blockSum = new float[rowCap];
        this.endsF = new float[rowCap];
        this.sum = new double[rowCap];
        this.seen = new boolean[rowCap];
        this.ends = new int[rowCap];
        this.row = new float[vdim];
        this.state = new OnlineSoftmax.Rows(1, vdim);
    }

    /** @return the vector shape, for {@code starling backends} */
    public static String describe() {
        return "Java Vector API, " + SPECIES.vectorBitSize() + "-bit vectors (" + LANES + " floats)";
    }

    /**
     * Starts a query block: loads {@code Q'ᵀ = s·Q[b, h, i0 .. i0+rows)ᵀ}, zero-padded to whole row
     * vectors, and empties the running state ({@code m = −∞}, {@code l = 0}, {@code acc = 0},
     * nothing seen).
     *
     * @param q queries. Not modified.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param rows valid rows, {@code <= qRows}
     * @param scale {@code s}
     */
    @Override
    public void begin(Tensor q, int b, int h, int i0, int rows, float scale) {
        this.rows = rows;
        Arrays.fill(qT, 0f);
        float[] qd = q.data();
        int stride = q.rowStride();
        int base = q.offset(b, h, i0);
        for (int r = 0; r < rows; r++) {
            for (int d = 0, src = base + r * stride, dst = r; d < dim; d++, dst += rowCap) {
                qT[dst] = qd[src + d] * scale;
            }
        }
        Arrays.fill(accT, 0f);
        Arrays.fill(max, Float.NEGATIVE_INFINITY);
        Arrays.fill(sum, 0.0);
        Arrays.fill(seen, false);
    }

    /**
     * Folds key block {@code kb} into the running state of the current rows, in chunks of at most
     * {@code kChunk} keys (so scratch stays {@code O(rows · kChunk)} whatever the block size).
     *
     * @param mask the plan's token mask
     * @param b batch entry
     * @param qb query block of the current rows
     * @param kb key block
     * @param i0 first current row
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param kvh key/value head
     * @param logWeight the block's {@code ln c}, added to every score (0: no pass)
     */
    @Override
    public void block(TokenMask mask, int b, int qb, int kb, int i0, Tensor k, Tensor v, int kvh, float logWeight) {
        int j0 = mask.keyBegin(kb);
        int n = mask.blockKeyEnd(b, qb, kb) - j0;
        if (n <= 0 || rows <= 0) {
            return;
        }
        boolean uniform = mask.uniform(b, qb, kb);
        if (!uniform) {
            for (int r = 0; r < rows; r++) {
                ends[r] = Math.max(0, mask.keyEnd(b, i0 + r, kb) - j0);
            }
        }
        for (int c0 = 0; c0 < n; c0 += kChunk) {
            int nc = Math.min(kChunk, n - c0);
            int common = nc;
            if (!uniform) {
                for (int r = 0; r < rows; r++) {
                    int e = Math.min(nc, Math.max(0, ends[r] - c0));
                    endsF[r] = e;
                    common = Math.min(common, e);
                }
                Arrays.fill(endsF, rows, rowCap, 0f);
            }
            for (int r = 0; r < rows; r++) {
                seen[r] |= uniform || ends[r] > c0;
            }
            scores(k.data(), k.offset(b, kvh, j0 + c0), k.rowStride(), nc);
            if (logWeight != 0f) {
                addLogWeight(nc, logWeight);
            }
            softmax(nc, uniform);
            accumulate(v.data(), v.offset(b, kvh, j0 + c0), v.rowStride(), common, nc);
        }
    }

    /** {@code sT[j][r] += w} for keys {@code j < n} and every row lane: a block's count (block multiplicity). */
    private void addLogWeight(int n, float w) {
        FloatVector wv = FloatVector.broadcast(SPECIES, w);
        for (int at = 0, end = n * rowCap; at < end; at += LANES) {
            FloatVector.fromArray(SPECIES, sT, at).add(wv).intoArray(sT, at);
        }
    }

    /** {@code sT[j][r] = Σ_d k[j][d]·qT[d][r]} for keys {@code j < n} and every row vector. */
    private void scores(float[] kd, int kBase, int kStride, int n) {
        final float[] q = qT;
        final float[] s = sT;
        final int dim = this.dim;
        final int rc = rowCap;
        final int rv = rowVectors;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            final int k0 = kBase + j * kStride;
            final int k1 = k0 + kStride;
            final int k2 = k1 + kStride;
            final int k3 = k2 + kStride;
            final int s0 = j * rc;
            final int s1 = s0 + rc;
            final int s2 = s1 + rc;
            final int s3 = s2 + rc;
            int v0 = 0;
            for (; v0 + 4 <= rv; v0 += 4) {
                final int c = v0 * LANES;
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
                for (int d = 0, qp = c; d < dim; d++, qp += rc) {
                    FloatVector q0 = FloatVector.fromArray(SPECIES, q, qp);
                    FloatVector q1 = FloatVector.fromArray(SPECIES, q, qp + l1);
                    FloatVector q2 = FloatVector.fromArray(SPECIES, q, qp + l2);
                    FloatVector q3 = FloatVector.fromArray(SPECIES, q, qp + l3);
                    FloatVector b = FloatVector.broadcast(SPECIES, kd[k0 + d]);
                    a00 = q0.fma(b, a00);
                    a01 = q1.fma(b, a01);
                    a02 = q2.fma(b, a02);
                    a03 = q3.fma(b, a03);
                    b = FloatVector.broadcast(SPECIES, kd[k1 + d]);
                    a10 = q0.fma(b, a10);
                    a11 = q1.fma(b, a11);
                    a12 = q2.fma(b, a12);
                    a13 = q3.fma(b, a13);
                    b = FloatVector.broadcast(SPECIES, kd[k2 + d]);
                    a20 = q0.fma(b, a20);
                    a21 = q1.fma(b, a21);
                    a22 = q2.fma(b, a22);
                    a23 = q3.fma(b, a23);
                    b = FloatVector.broadcast(SPECIES, kd[k3 + d]);
                    a30 = q0.fma(b, a30);
                    a31 = q1.fma(b, a31);
                    a32 = q2.fma(b, a32);
                    a33 = q3.fma(b, a33);
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
            for (; v0 < rv; v0++) {
                final int c = v0 * LANES;
                FloatVector a0 = FloatVector.zero(SPECIES);
                FloatVector a1 = a0;
                FloatVector a2 = a0;
                FloatVector a3 = a0;
                for (int d = 0, qp = c; d < dim; d++, qp += rc) {
                    FloatVector q0 = FloatVector.fromArray(SPECIES, q, qp);
                    a0 = q0.fma(FloatVector.broadcast(SPECIES, kd[k0 + d]), a0);
                    a1 = q0.fma(FloatVector.broadcast(SPECIES, kd[k1 + d]), a1);
                    a2 = q0.fma(FloatVector.broadcast(SPECIES, kd[k2 + d]), a2);
                    a3 = q0.fma(FloatVector.broadcast(SPECIES, kd[k3 + d]), a3);
                }
                a0.intoArray(s, s0 + c);
                a1.intoArray(s, s1 + c);
                a2.intoArray(s, s2 + c);
                a3.intoArray(s, s3 + c);
            }
        }
        for (; j < n; j++) {
            final int k0 = kBase + j * kStride;
            for (int v0 = 0; v0 < rv; v0++) {
                final int c = v0 * LANES;
                FloatVector a0 = FloatVector.zero(SPECIES);
                for (int d = 0, qp = c; d < dim; d++, qp += rc) {
                    a0 = FloatVector.fromArray(SPECIES, q, qp).fma(FloatVector.broadcast(SPECIES, kd[k0 + d]), a0);
                }
                a0.intoArray(s, j * rc + c);
            }
        }
    }

    /**
     * The online-softmax step, lane-wise over rows: masks keys a row does not read to {@code −∞}
     * (non-uniform blocks), raises the running maximum, leaves {@code alpha = exp(m − m')} (1 when
     * {@code m = m'}, also when both are infinite) for {@link #accumulate}, turns {@code Sᵀ} into
     * {@code Pᵀ = exp(Sᵀ − shift)} and adds the block sums into {@code l}. A row that reads no key
     * of the block keeps {@code m' = m}: {@code α = 1}, {@code p = 0}.
     *
     * <p>The block maximum is a compare-and-blend, which skips NaN scores (Java's lane-wise
     * {@code MAX} propagates NaN but costs several instructions); a NaN score still poisons its row
     * as the policy says, through {@code p = exp(NaN) = NaN} in {@code l} and in the output.
     */
    private void softmax(int n, boolean uniform) {
        final float[] s = sT;
        final int rc = rowCap;
        final FloatVector negInf = FloatVector.broadcast(SPECIES, Float.NEGATIVE_INFINITY);
        for (int c = 0; c < rc; c += LANES) {
            FloatVector blockMax = negInf;
            if (uniform) {
                // Four independent chains: a compare-and-blend maximum has a long latency.
                FloatVector m1 = negInf;
                FloatVector m2 = negInf;
                FloatVector m3 = negInf;
                int j = 0;
                for (int at = c; j + 4 <= n; j += 4, at += 4 * rc) {
                    FloatVector x0 = FloatVector.fromArray(SPECIES, s, at);
                    FloatVector x1 = FloatVector.fromArray(SPECIES, s, at + rc);
                    FloatVector x2 = FloatVector.fromArray(SPECIES, s, at + 2 * rc);
                    FloatVector x3 = FloatVector.fromArray(SPECIES, s, at + 3 * rc);
                    blockMax = blockMax.blend(x0, x0.compare(VectorOperators.GT, blockMax));
                    m1 = m1.blend(x1, x1.compare(VectorOperators.GT, m1));
                    m2 = m2.blend(x2, x2.compare(VectorOperators.GT, m2));
                    m3 = m3.blend(x3, x3.compare(VectorOperators.GT, m3));
                }
                for (int at = c + j * rc; j < n; j++, at += rc) {
                    FloatVector x = FloatVector.fromArray(SPECIES, s, at);
                    blockMax = blockMax.blend(x, x.compare(VectorOperators.GT, blockMax));
                }
                blockMax = blockMax.blend(m1, m1.compare(VectorOperators.GT, blockMax));
                m2 = m2.blend(m3, m3.compare(VectorOperators.GT, m2));
                blockMax = blockMax.blend(m2, m2.compare(VectorOperators.GT, blockMax));
            } else {
                FloatVector e = FloatVector.fromArray(SPECIES, endsF, c);
                for (int j = 0, at = c; j < n; j++, at += rc) {
                    FloatVector x = FloatVector.fromArray(SPECIES, s, at).blend(negInf, e.compare(VectorOperators.LE, j));
                    x.intoArray(s, at);
                    blockMax = blockMax.blend(x, x.compare(VectorOperators.GT, blockMax));
                }
            }
            FloatVector m = FloatVector.fromArray(SPECIES, max, c);
            FloatVector mNew = m.lanewise(MAX, blockMax);
            // alpha = exp(m − m') by the same polynomial as p below (not the lane-wise EXP, whose
            // intrinsic and Java fallback differ in the last bit: results would depend on the JIT).
            FloatVector xa = m.sub(mNew);
            FloatVector ka = xa.fma(LOG2E, ROUND);
            FloatVector ra = ka.sub(ROUND).fma(NEG_LN2, xa);
            FloatVector ea = ra.fma(E5, E4).fma(ra, E3).fma(ra, E2).fma(ra, E1).fma(ra, E0);
            ea.mul(ka.reinterpretAsInts().add(EXP_BIAS).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats())
                    .blend(0f, xa.compare(VectorOperators.LT, EXP_LOW)).blend(1f, m.eq(mNew)).intoArray(alpha, c);
            mNew.intoArray(max, c);
            FloatVector shift = mNew.blend(0f, mNew.eq(negInf));
            // p = exp(s − shift) = 2^k·e^r: k = round(x·log2 e) by adding 1.5·2^23, r = x − k·ln 2 in one
            // fused step (|r| <= ln2/2 + tiny), e^r by a degree-5 minimax polynomial (relative error
            // 1.2e-7), 2^k built in the exponent bits as 2^(k+64)·2^−64 so that results down to the
            // subnormals are right; x is clamped at −110, so −∞ (masked keys) gives exactly 0.
            // Positive x only occurs in rows whose maximum is +∞ or NaN, which the policy makes NaN.
            FloatVector t0 = FloatVector.zero(SPECIES);
            FloatVector t1 = t0;
            int j = 0;
            int at = c;
            for (; j + 2 <= n; j += 2, at += 2 * rc) {
                FloatVector x0 = FloatVector.fromArray(SPECIES, s, at).sub(shift);
                FloatVector x1 = FloatVector.fromArray(SPECIES, s, at + rc).sub(shift);
                FloatVector k0 = x0.fma(LOG2E, ROUND);
                FloatVector k1 = x1.fma(LOG2E, ROUND);
                FloatVector r0 = k0.sub(ROUND).fma(NEG_LN2, x0);
                FloatVector r1 = k1.sub(ROUND).fma(NEG_LN2, x1);
                FloatVector e0 = r0.fma(E5, E4).fma(r0, E3).fma(r0, E2).fma(r0, E1).fma(r0, E0);
                FloatVector e1 = r1.fma(E5, E4).fma(r1, E3).fma(r1, E2).fma(r1, E1).fma(r1, E0);
                FloatVector p0 = e0.mul(k0.reinterpretAsInts().add(EXP_BIAS).lanewise(VectorOperators.LSHL, 23)
                        .reinterpretAsFloats()).blend(0f, x0.compare(VectorOperators.LT, EXP_LOW));
                FloatVector p1 = e1.mul(k1.reinterpretAsInts().add(EXP_BIAS).lanewise(VectorOperators.LSHL, 23)
                        .reinterpretAsFloats()).blend(0f, x1.compare(VectorOperators.LT, EXP_LOW));
                p0.intoArray(s, at);
                p1.intoArray(s, at + rc);
                t0 = t0.add(p0);
                t1 = t1.add(p1);
            }
            if (j < n) {
                FloatVector x0 = FloatVector.fromArray(SPECIES, s, at).sub(shift);
                FloatVector k0 = x0.fma(LOG2E, ROUND);
                FloatVector r0 = k0.sub(ROUND).fma(NEG_LN2, x0);
                FloatVector e0 = r0.fma(E5, E4).fma(r0, E3).fma(r0, E2).fma(r0, E1).fma(r0, E0);
                FloatVector p0 = e0.mul(k0.reinterpretAsInts().add(EXP_BIAS).lanewise(VectorOperators.LSHL, 23)
                        .reinterpretAsFloats()).blend(0f, x0.compare(VectorOperators.LT, EXP_LOW));
                p0.intoArray(s, at);
                t0 = t0.add(p0);
            }
            t0.add(t1).intoArray(blockSum, c);
        }
        for (int r = 0; r < rows; r++) {
            sum[r] = sum[r] * alpha[r] + blockSum[r];
        }
    }

    /**
     * {@code accᵀ[f][r] = α[r]·accᵀ[f][r] + Σ_{j < ends[r]} v[j][f]·pᵀ[j][r]}: keys below
     * {@code common} (read by every row) plainly, keys in {@code [common, n)} under the lane mask
     * {@code j < ends[r]}. A driver over small tile methods, each holding its own vectors: small
     * enough for C1 to compile while C2 works (an interpreted Vector API loop is about a thousand
     * times slower), and for C2 to compile quickly.
     */
    private void accumulate(float[] vd, int vBase, int vStride, int common, int n) {
        final int rv = rowVectors;
        int f = 0;
        for (; f + 4 <= vdim; f += 4) {
            int v0 = 0;
            for (; v0 + 4 <= rv; v0 += 4) {
                tile4x4(vd, vBase + f, vStride, f * rowCap, v0 * LANES, common);
                if (common < n) {
                    tile4x4Masked(vd, vBase + f, vStride, f * rowCap, v0 * LANES, common, n);
                }
            }
            for (; v0 < rv; v0++) {
                tile1x4(vd, vBase + f, vStride, f * rowCap, v0 * LANES, common, n);
            }
        }
        for (; f < vdim; f++) {
            for (int v0 = 0; v0 < rv; v0++) {
                tile1x1(vd, vBase + f, vStride, f * rowCap, v0 * LANES, common, n);
            }
        }
    }

    /**
     * Features {@code f .. f+3} (at {@code accᵀ[o0]}), row vectors at lane {@code c} .. {@code c + 4L}:
     * rescale by {@code α}, add keys {@code j < common}.
     */
    private void tile4x4(float[] vd, int vp, int vStride, int o0, int c, int common) {
        final float[] p = sT;
        final float[] o = accT;
        final int rc = rowCap;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        final int o1 = o0 + rc;
        final int o2 = o1 + rc;
        final int o3 = o2 + rc;
        FloatVector al0 = FloatVector.fromArray(SPECIES, alpha, c);
        FloatVector al1 = FloatVector.fromArray(SPECIES, alpha, c + l1);
        FloatVector al2 = FloatVector.fromArray(SPECIES, alpha, c + l2);
        FloatVector al3 = FloatVector.fromArray(SPECIES, alpha, c + l3);
        FloatVector c00 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(al0);
        FloatVector c01 = FloatVector.fromArray(SPECIES, o, o0 + c + l1).mul(al1);
        FloatVector c02 = FloatVector.fromArray(SPECIES, o, o0 + c + l2).mul(al2);
        FloatVector c03 = FloatVector.fromArray(SPECIES, o, o0 + c + l3).mul(al3);
        FloatVector c10 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(al0);
        FloatVector c11 = FloatVector.fromArray(SPECIES, o, o1 + c + l1).mul(al1);
        FloatVector c12 = FloatVector.fromArray(SPECIES, o, o1 + c + l2).mul(al2);
        FloatVector c13 = FloatVector.fromArray(SPECIES, o, o1 + c + l3).mul(al3);
        FloatVector c20 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(al0);
        FloatVector c21 = FloatVector.fromArray(SPECIES, o, o2 + c + l1).mul(al1);
        FloatVector c22 = FloatVector.fromArray(SPECIES, o, o2 + c + l2).mul(al2);
        FloatVector c23 = FloatVector.fromArray(SPECIES, o, o2 + c + l3).mul(al3);
        FloatVector c30 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(al0);
        FloatVector c31 = FloatVector.fromArray(SPECIES, o, o3 + c + l1).mul(al1);
        FloatVector c32 = FloatVector.fromArray(SPECIES, o, o3 + c + l2).mul(al2);
        FloatVector c33 = FloatVector.fromArray(SPECIES, o, o3 + c + l3).mul(al3);
        for (int j = 0, pp = c; j < common; j++, pp += rc, vp += vStride) {
            FloatVector p0 = FloatVector.fromArray(SPECIES, p, pp);
            FloatVector p1 = FloatVector.fromArray(SPECIES, p, pp + l1);
            FloatVector p2 = FloatVector.fromArray(SPECIES, p, pp + l2);
            FloatVector p3 = FloatVector.fromArray(SPECIES, p, pp + l3);
            FloatVector b = FloatVector.broadcast(SPECIES, vd[vp]);
            c00 = p0.fma(b, c00);
            c01 = p1.fma(b, c01);
            c02 = p2.fma(b, c02);
            c03 = p3.fma(b, c03);
            b = FloatVector.broadcast(SPECIES, vd[vp + 1]);
            c10 = p0.fma(b, c10);
            c11 = p1.fma(b, c11);
            c12 = p2.fma(b, c12);
            c13 = p3.fma(b, c13);
            b = FloatVector.broadcast(SPECIES, vd[vp + 2]);
            c20 = p0.fma(b, c20);
            c21 = p1.fma(b, c21);
            c22 = p2.fma(b, c22);
            c23 = p3.fma(b, c23);
            b = FloatVector.broadcast(SPECIES, vd[vp + 3]);
            c30 = p0.fma(b, c30);
            c31 = p1.fma(b, c31);
            c32 = p2.fma(b, c32);
            c33 = p3.fma(b, c33);
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

    /** As {@link #tile4x4} (after it: no rescale) for keys {@code [common, n)}, each under its lane mask. */
    private void tile4x4Masked(float[] vd, int vBase, int vStride, int o0, int c, int common, int n) {
        final float[] p = sT;
        final float[] o = accT;
        final int rc = rowCap;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        final int o1 = o0 + rc;
        final int o2 = o1 + rc;
        final int o3 = o2 + rc;
        FloatVector e0 = FloatVector.fromArray(SPECIES, endsF, c);
        FloatVector e1 = FloatVector.fromArray(SPECIES, endsF, c + l1);
        FloatVector e2 = FloatVector.fromArray(SPECIES, endsF, c + l2);
        FloatVector e3 = FloatVector.fromArray(SPECIES, endsF, c + l3);
        FloatVector c00 = FloatVector.fromArray(SPECIES, o, o0 + c);
        FloatVector c01 = FloatVector.fromArray(SPECIES, o, o0 + c + l1);
        FloatVector c02 = FloatVector.fromArray(SPECIES, o, o0 + c + l2);
        FloatVector c03 = FloatVector.fromArray(SPECIES, o, o0 + c + l3);
        FloatVector c10 = FloatVector.fromArray(SPECIES, o, o1 + c);
        FloatVector c11 = FloatVector.fromArray(SPECIES, o, o1 + c + l1);
        FloatVector c12 = FloatVector.fromArray(SPECIES, o, o1 + c + l2);
        FloatVector c13 = FloatVector.fromArray(SPECIES, o, o1 + c + l3);
        FloatVector c20 = FloatVector.fromArray(SPECIES, o, o2 + c);
        FloatVector c21 = FloatVector.fromArray(SPECIES, o, o2 + c + l1);
        FloatVector c22 = FloatVector.fromArray(SPECIES, o, o2 + c + l2);
        FloatVector c23 = FloatVector.fromArray(SPECIES, o, o2 + c + l3);
        FloatVector c30 = FloatVector.fromArray(SPECIES, o, o3 + c);
        FloatVector c31 = FloatVector.fromArray(SPECIES, o, o3 + c + l1);
        FloatVector c32 = FloatVector.fromArray(SPECIES, o, o3 + c + l2);
        FloatVector c33 = FloatVector.fromArray(SPECIES, o, o3 + c + l3);
        for (int j = common, pp = c + common * rc, vp = vBase + common * vStride; j < n; j++, pp += rc, vp += vStride) {
            VectorMask<Float> m0 = e0.compare(VectorOperators.GT, j);
            VectorMask<Float> m1 = e1.compare(VectorOperators.GT, j);
            VectorMask<Float> m2 = e2.compare(VectorOperators.GT, j);
            VectorMask<Float> m3 = e3.compare(VectorOperators.GT, j);
            FloatVector p0 = FloatVector.fromArray(SPECIES, p, pp);
            FloatVector p1 = FloatVector.fromArray(SPECIES, p, pp + l1);
            FloatVector p2 = FloatVector.fromArray(SPECIES, p, pp + l2);
            FloatVector p3 = FloatVector.fromArray(SPECIES, p, pp + l3);
            FloatVector b = FloatVector.broadcast(SPECIES, vd[vp]);
            c00 = c00.blend(p0.fma(b, c00), m0);
            c01 = c01.blend(p1.fma(b, c01), m1);
            c02 = c02.blend(p2.fma(b, c02), m2);
            c03 = c03.blend(p3.fma(b, c03), m3);
            b = FloatVector.broadcast(SPECIES, vd[vp + 1]);
            c10 = c10.blend(p0.fma(b, c10), m0);
            c11 = c11.blend(p1.fma(b, c11), m1);
            c12 = c12.blend(p2.fma(b, c12), m2);
            c13 = c13.blend(p3.fma(b, c13), m3);
            b = FloatVector.broadcast(SPECIES, vd[vp + 2]);
            c20 = c20.blend(p0.fma(b, c20), m0);
            c21 = c21.blend(p1.fma(b, c21), m1);
            c22 = c22.blend(p2.fma(b, c22), m2);
            c23 = c23.blend(p3.fma(b, c23), m3);
            b = FloatVector.broadcast(SPECIES, vd[vp + 3]);
            c30 = c30.blend(p0.fma(b, c30), m0);
            c31 = c31.blend(p1.fma(b, c31), m1);
            c32 = c32.blend(p2.fma(b, c32), m2);
            c33 = c33.blend(p3.fma(b, c33), m3);
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

    /** One row vector (lane {@code c}) × features {@code f .. f+3}: rescale, keys below {@code common}, masked keys to {@code n}. */
    private void tile1x4(float[] vd, int vp, int vStride, int o0, int c, int common, int n) {
        final float[] p = sT;
        final float[] o = accT;
        final int rc = rowCap;
        final int o1 = o0 + rc;
        final int o2 = o1 + rc;
        final int o3 = o2 + rc;
        FloatVector al = FloatVector.fromArray(SPECIES, alpha, c);
        FloatVector c0 = FloatVector.fromArray(SPECIES, o, o0 + c).mul(al);
        FloatVector c1 = FloatVector.fromArray(SPECIES, o, o1 + c).mul(al);
        FloatVector c2 = FloatVector.fromArray(SPECIES, o, o2 + c).mul(al);
        FloatVector c3 = FloatVector.fromArray(SPECIES, o, o3 + c).mul(al);
        FloatVector e = FloatVector.fromArray(SPECIES, endsF, c);
        for (int j = 0, pp = c; j < n; j++, pp += rc, vp += vStride) {
            FloatVector p0 = FloatVector.fromArray(SPECIES, p, pp);
            if (j < common) {
                c0 = p0.fma(FloatVector.broadcast(SPECIES, vd[vp]), c0);
                c1 = p0.fma(FloatVector.broadcast(SPECIES, vd[vp + 1]), c1);
                c2 = p0.fma(FloatVector.broadcast(SPECIES, vd[vp + 2]), c2);
                c3 = p0.fma(FloatVector.broadcast(SPECIES, vd[vp + 3]), c3);
            } else {
                VectorMask<Float> m = e.compare(VectorOperators.GT, j);
                c0 = c0.blend(p0.fma(FloatVector.broadcast(SPECIES, vd[vp]), c0), m);
                c1 = c1.blend(p0.fma(FloatVector.broadcast(SPECIES, vd[vp + 1]), c1), m);
                c2 = c2.blend(p0.fma(FloatVector.broadcast(SPECIES, vd[vp + 2]), c2), m);
                c3 = c3.blend(p0.fma(FloatVector.broadcast(SPECIES, vd[vp + 3]), c3), m);
            }
        }
        c0.intoArray(o, o0 + c);
        c1.intoArray(o, o1 + c);
        c2.intoArray(o, o2 + c);
        c3.intoArray(o, o3 + c);
    }

    /** One row vector (lane {@code c}) × one feature (the {@code Dv % 4} tail). */
    private void tile1x1(float[] vd, int vp, int vStride, int o0, int c, int common, int n) {
        final float[] p = sT;
        final int rc = rowCap;
        FloatVector acc = FloatVector.fromArray(SPECIES, accT, o0 + c).mul(FloatVector.fromArray(SPECIES, alpha, c));
        FloatVector e = FloatVector.fromArray(SPECIES, endsF, c);
        for (int j = 0, pp = c; j < n; j++, pp += rc, vp += vStride) {
            FloatVector t = FloatVector.fromArray(SPECIES, p, pp).fma(FloatVector.broadcast(SPECIES, vd[vp]), acc);
            acc = j < common ? t : acc.blend(t, e.compare(VectorOperators.GT, j));
        }
        acc.intoArray(accT, o0 + c);
    }

    /**
     * Writes the current query block's rows: {@code O = acc / l} and {@code LSE = m + ln l} (the
     * formula of {@link OnlineSoftmax.Rows#finish}), through {@link OnlineSoftmax.Rows} itself
     * for rows its policy treats specially (no key read, non-finite maximum), and {@code O = 0},
     * {@code LSE = −∞} for the padded rows {@code [rows, total)}.
     *
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified: rows {@code i0 .. i0+total)} of {@code (b, h)}.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param total rows of the query block
     * @param lse {@code [B, Hq, Nq]} or {@code null}. Modified likewise.
     * @param lseBase index of row {@code i0} in {@code lse}
     */
    @Override
    public void finish(Tensor out, int b, int h, int i0, int total, float[] lse, int lseBase) {
        float[] od = out.data();
        int stride = out.rowStride();
        int base = out.offset(b, h, i0);
        for (int r = 0; r < total; r++) {
            int dst = base + r * stride;
            if (r >= rows) {
                OnlineSoftmax.empty(od, dst, vdim, lse, lseBase + r);
            } else if (seen[r] && Float.isFinite(max[r])) {
                float inv = (float) (1.0 / sum[r]);
                for (int f = 0, at = r; f < vdim; f++, at += rowCap) {
                    od[dst + f] = accT[at] * inv;
                }
                if (lse != null) {
                    lse[lseBase + r] = (float) (max[r] + Math.log(sum[r]));
                }
            } else {
                state.reset(1);
                if (seen[r]) {
                    state.absorb(0, max[r], sum[r], rowOf(r), 0);
                }
                state.finish(0, od, dst, lse, lseBase + r);
            }
        }
    }

    private float[] rowOf(int r) {
        for (int f = 0, at = r; f < vdim; f++, at += rowCap) {
            row[f] = accT[at];
        }
        return row;
    }

    /**
     * Saves the current query block's unnormalised state (a part of a split row) for
     * {@link #finishSplit}: row {@code r} at index {@code base + r} of the scalar arrays and at
     * {@code (base + r)·Dv} of {@code partAcc}.
     *
     * @param partMax running maxima. Modified.
     * @param partSum running sums. Modified.
     * @param partSeen whether the row read any key. Modified.
     * @param partAcc unnormalised outputs, row-major. Modified.
     * @param base first row's index
     */
    @Override
    public void save(float[] partMax, double[] partSum, boolean[] partSeen, float[] partAcc, int base) {
        for (int r = 0; r < rows; r++) {
            partMax[base + r] = max[r];
            partSum[base + r] = sum[r];
            partSeen[base + r] = seen[r];
            System.arraycopy(rowOf(r), 0, partAcc, (base + r) * vdim, vdim);
        }
    }

    /**
     * Merges the saved parts of a split row exactly ({@link OnlineSoftmax.Rows#absorb}) and writes
     * it as {@link #finish} does.
     *
     * @param partMax running maxima saved by {@link #save}. Not modified.
     * @param partSum running sums. Not modified.
     * @param partSeen whether each part's row read a key. Not modified.
     * @param partAcc unnormalised outputs. Not modified.
     * @param firstBase index of row 0 of the first part; part {@code x} starts {@code x·partStride} later
     * @param parts number of parts
     * @param partStride rows between parts
     * @param out output. Modified: the rows of the query block.
     * @param b batch entry
     * @param h query head
     * @param i0 first row
     * @param total rows of the query block
     * @param valid valid rows
     * @param lse LSE or {@code null}. Modified likewise.
     * @param lseBase index of row {@code i0} in {@code lse}
     */
    @Override
    public void finishSplit(float[] partMax, double[] partSum, boolean[] partSeen, float[] partAcc, int firstBase, int parts,
                     int partStride, Tensor out, int b, int h, int i0, int total, int valid, float[] lse, int lseBase) {
        float[] od = out.data();
        int stride = out.rowStride();
        int base = out.offset(b, h, i0);
        for (int r = 0; r < total; r++) {
            if (r < valid) {
                state.reset(1);
                for (int x = 0; x < parts; x++) {
                    int at = firstBase + x * partStride + r;
                    if (partSeen[at]) {
                        state.absorb(0, partMax[at], partSum[at], partAcc, at * vdim);
                    }
                }
                state.finish(0, od, base + r * stride, lse, lseBase + r);
            } else {
                OnlineSoftmax.empty(od, base + r * stride, vdim, lse, lseBase + r);
            }
        }
    }
}
