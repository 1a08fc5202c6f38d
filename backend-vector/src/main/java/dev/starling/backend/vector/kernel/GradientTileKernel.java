package dev.starling.backend.vector.kernel;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.TokenMask;
import dev.starling.backend.vector.GradientCall;
import dev.starling.backend.vector.GradientKernel;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The backward micro-kernel: one key tile (up to {@value #KEY_TILE} keys of a key block) against
 * every reading of it, in one sweep. Keys are the vector lanes here ({@code kCap = ⌈n / L⌉·L}
 * lanes, zero-padded), so everything that changes from one reading to the next — the query rows,
 * their output gradients, {@code LSE} and {@code D} — is read in place as scalar broadcasts, and
 * only the key tile is packed, once: {@code Kᵀ·s} and {@code Vᵀ} ({@code [D][kCap]},
 * {@code [Dv][kCap]}) and {@code K·s} row-major ({@code [kCap][Dpad]}), non-finite values replaced
 * by 0 (no row that reads them runs here). Per reading of {@code m} active rows (padded to a
 * multiple of 4 by copies of the first row that read no key):
 * <ol>
 *   <li>{@code S [m][kCap] = Q·(s·Kᵀ)} and {@code dP = dO·Vᵀ}: register tiles of 4 rows × 4 key
 *       vectors, one broadcast per row and feature;</li>
 *   <li>lane-wise {@code P = exp(S − LSE)} (the forward's polynomial; with a block count {@code c},
 *       {@code LSE − ln c} in place of {@code LSE}), 0 on keys the row does not read, and
 *       {@code dS = P·(dP − D)};</li>
 *   <li>{@code dV += Pᵀ·dO} and {@code dK += dSᵀ·Q} into the tile's row-major accumulators
 *       ({@code [kCap][DvPad]}, {@code [kCap][Dpad]}; the gathered rows are zero-padded to whole
 *       vectors): tiles of 4 keys × 4 feature vectors over the rows;</li>
 *   <li>{@code dQ += dS·(s·K)} into the chunk's slot rows: tiles of 4 rows × 4 feature vectors
 *       over the keys.</li>
 * </ol>
 * Five products of the tile's size per reading, against the forward's two. Every {@code Vector}
 * lives and dies inside one method. The sums run in a fixed order (readings by query head, then
 * query block; rows and keys ascending), so results do not depend on threads.
 */
public final class GradientTileKernel implements GradientKernel {
    /** Most keys of a tile. */
    public static final int KEY_TILE = 64;
    /** Most query rows per reading (a larger query block is walked in chunks of rows). */
    public static final int ROWS = 64;

    private static final VectorSpecies<Float> SPECIES = TileKernel.SPECIES;
    private static final int LANES = TileKernel.LANES;

    private final int dim;
    private final int vdim;
    private final int dPad;
    private final int vPad;
    private final int kTile;
    private final int kCap;
    /** {@code s·Kᵀ [D][kCap]}. */
    private final float[] kT;
    /** {@code Vᵀ [Dv][kCap]}. */
    private final float[] vT;
    /** {@code s·K [kCap][Dpad]}. */
    private final float[] kR;
    /** {@code dK} of the tile, unscaled, {@code [kCap][Dpad]}. */
    private final float[] dKR;
    /** {@code dV} of the tile, {@code [kCap][DvPad]}. */
    private final float[] dVR;
    /** {@code S}, then {@code P}, {@code [ROWS + 3][kCap]}. */
    private final float[] pT;
    /** {@code dP}, then {@code dS}. */
    private final float[] dsT;
    /** Lane {@code x} holds {@code x}: compared with a row's key end. */
    private final float[] iota;
    /** The current reading's {@code dQ} rows {@code [ROWS + 3][Dpad]}, added to the slots at its end. */
    private final float[] dqL;
    /** The current reading's query rows, gathered row-major {@code [ROWS + 3][Dpad]} (padding and rows past {@code m}: 0). */
    private final float[] qP;
    /** Their output gradients {@code [ROWS + 3][DvPad]}. */
    private final float[] gP;
    private final int[] rowDq = new int[ROWS + 3];
    private final float[] rowEnd = new float[ROWS + 3];
    private final float[] rowLse = new float[ROWS + 3];
    private final float[] rowDelta = new float[ROWS + 3];

    /**
     * Scratch for key tiles of up to {@code keyTile} keys.
     *
     * @param dim {@code D}
     * @param vdim {@code Dv}
     * @param keyTile keys per tile, at most {@link #KEY_TILE}
     */
    public GradientTileKernel(int dim, int vdim, int keyTile) {
        this.dim = dim;
        this.vdim = vdim;
        this.kTile = keyTile;
        this.kCap = roundUp(keyTile);
        this.dPad = roundUp(dim);
        this.vPad = roundUp(vdim);
        this.kT = new float[Math.multiplyExact(dim, kCap)];
        this.vT = new float[Math.multiplyExact(vdim, kCap)];
        this.kR = new float[Math.multiplyExact(kCap, dPad)];
        this.dKR = new float[Math.multiplyExact(kCap, dPad)];
        this.dVR = new float[Math.multiplyExact(kCap, vPad)];
        this.pT = new float[(ROWS + 3) * kCap];
        this.dsT = new float[pT.length];
        this.dqL = new float[(ROWS + 3) * dPad];
        this.qP = new float[(ROWS + 3) * dPad];
        this.gP = new float[(ROWS + 3) * vPad];
        this.iota = new float[kCap];
        for (int x = 0; x < kCap; x++) {
            iota[x] = x;
        }
    }

    /**
     * @param n a length
     * @return {@code n} rounded up to whole vectors
     */
    public static int roundUp(int n) {
        return Math.toIntExact(((long) n + LANES - 1) / LANES * LANES);
    }

    @Override
    public void unit(GradientCall c, int b, int kvh, int chunk) {
        TokenMask mask = c.mask;
        LayoutColumns cols = c.columns;
        AttentionProblem p = mask.problem();
        int group = p.groupSize();
        int h0 = kvh * group;
        int qBlocks = mask.layout().queryBlocks();
        int slotBatch = b * c.slotsPerBatch;
        for (int h = h0; h < h0 + group && c.dq == null; h++) {
            int[] slots = c.slotIndex[h];
            for (int qb = 0; qb < qBlocks; qb++) {
                int s = slots[chunk * qBlocks + qb];
                if (s >= 0) {
                    int at = (slotBatch + s) * c.slotFloats;
                    Arrays.fill(c.dqSlots, at, at + c.slotFloats, 0f);
                }
            }
        }
        float[] qd = c.q.data();
        float[] gd = c.dOut.data();
        for (int kb = c.chunkStart[kvh][chunk]; kb < c.chunkStart[kvh][chunk + 1]; kb++) {
            int kEnd = mask.keyEnd(kb);
            for (int j0 = mask.keyBegin(kb); j0 < kEnd; j0 += kTile) {
                int n = Math.min(kTile, kEnd - j0);
                pack(c, b, kvh, j0, n);
                for (int h = h0; h < h0 + group; h++) {
                    int[] slots = c.slotIndex[h];
                    for (int at = cols.columnBegin(h, kb); at < cols.columnEnd(h, kb); at++) {
                        int qb = cols.queryBlock(h, at);
                        // Block multiplicity: P = exp(S + ln c − LSE) = exp(S − (LSE − ln c)).
                        float logWeight = (float) cols.logWeight(h, at);
                        int qBegin = mask.queryBegin(qb);
                        int valid = mask.validQueryEnd(b, qb);
                        int slotBase = c.dq != null ? 0 : (slotBatch + slots[chunk * qBlocks + qb]) * c.slotFloats;
                        // A uniform block: every valid row reads the same keys of it (-1: per row).
                        int same = mask.uniform(b, qb, kb) ? Math.max(0, Math.min(n, mask.blockKeyEnd(b, qb, kb) - j0)) : -1;
                        if (same == 0) {
                            continue;
                        }
                        // Rows of one (b, h) are evenly spaced in every tensor.
                        int lse0 = mask.lseIndex(b, h, 0);
                        int qo = c.q.offset(b, h, 0);
                        int qs = c.q.rowStride();
                        int go = c.dOut.offset(b, h, 0);
                        int gs = c.dOut.rowStride();
                        int dqo = c.dq != null ? c.dq.offset(b, h, 0) : slotBase - qBegin * dPad;
                        int dqs = c.dq != null ? c.dq.rowStride() : dPad;
                        for (int i0 = qBegin; i0 < valid; i0 += ROWS) {
                            int m = 0;
                            int nMax = 0;
                            for (int i = i0, iEnd = Math.min(valid, i0 + ROWS); i < iEnd; i++) {
                                int row = lse0 + i;
                                if (c.rowState[row] != GradientCall.ACTIVE) {
                                    continue;
                                }
                                int e = same > 0 ? same : Math.min(n, mask.keyEnd(b, i, kb) - j0);
                                if (e <= 0) {
                                    continue;
                                }
                                System.arraycopy(qd, qo + i * qs, qP, m * dPad, dim);
                                System.arraycopy(gd, go + i * gs, gP, m * vPad, vdim);
                                rowDq[m] = dqo + i * dqs;
                                rowEnd[m] = e;
                                rowLse[m] = c.lse[row] - logWeight;
                                rowDelta[m] = c.delta[row];
                                nMax = Math.max(nMax, e);
                                m++;
                            }
                            if (m > 0) {
                                reading(c.dq != null ? c.dq.data() : c.dqSlots, m, nMax);
                            }
                        }
                    }
                }
                writeKeys(c, b, kvh, j0, n, p.scale());
            }
        }
    }

    /** Packs key tile {@code [j0, j0 + n)}: {@code s·Kᵀ}, {@code Vᵀ}, {@code s·K}, non-finite values as 0; empties its sums. */
    private void pack(GradientCall c, int b, int kvh, int j0, int n) {
        float scale = c.mask.problem().scale();
        float[] kd = c.k.data();
        float[] vd = c.v.data();
        if (n < kCap) {
            // Lanes past the tile's keys must be 0 (they are masked, but must not be NaN).
            Arrays.fill(kT, 0f);
            Arrays.fill(vT, 0f);
        }
        boolean sanitise = c.badKeys;
        for (int jl = 0; jl < n; jl++) {
            int ko = c.k.offset(b, kvh, j0 + jl);
            int vo = c.v.offset(b, kvh, j0 + jl);
            int at = jl * dPad;
            for (int d = 0; d < dim; d++) {
                kR[at + d] = kd[ko + d] * scale;
            }
            for (int f = 0, t = jl; f < vdim; f++, t += kCap) {
                vT[t] = vd[vo + f];
            }
            if (sanitise) {
                for (int d = 0; d < dim; d++) {
                    kR[at + d] = Float.isFinite(kR[at + d]) ? kR[at + d] : 0f;
                }
                for (int f = 0, t = jl; f < vdim; f++, t += kCap) {
                    vT[t] = Float.isFinite(vT[t]) ? vT[t] : 0f;
                }
            }
        }
        for (int d = 0; d < dim; d++) {
            for (int jl = 0, t = d * kCap, at = d; jl < n; jl++, at += dPad) {
                kT[t + jl] = kR[at];
            }
        }
        Arrays.fill(dKR, 0f);
        Arrays.fill(dVR, 0f);
    }

    /** Writes the tile's {@code dK = s·Σ dSᵀ·Q} and {@code dV} for keys {@code [j0, j0 + n)}. */
    private void writeKeys(GradientCall c, int b, int kvh, int j0, int n, float scale) {
        float[] dkd = c.dk.data();
        float[] dvd = c.dv.data();
        for (int jl = 0; jl < n; jl++) {
            int ko = c.dk.offset(b, kvh, j0 + jl);
            int vo = c.dv.offset(b, kvh, j0 + jl);
            for (int d = 0, at = jl * dPad; d < dim; d++) {
                dkd[ko + d] = dKR[at + d] * scale;
            }
            System.arraycopy(dVR, jl * vPad, dvd, vo, vdim);
        }
    }

    /** One reading of the current tile by {@code m} gathered rows. */
    private void reading(float[] dq, int m, int nMax) {
        int m4 = (m + 3) & ~3;
        Arrays.fill(qP, m * dPad, m4 * dPad, 0f);
        Arrays.fill(gP, m * vPad, m4 * vPad, 0f);
        for (int r = m; r < m4; r++) {
            rowDq[r] = rowDq[0];
            rowEnd[r] = 0f;
            rowLse[r] = 0f;
            rowDelta[r] = 0f;
        }
        final int kc = kCap;
        for (int r = 0; r < m4; r += 4) {
            int jv = 0;
            for (; jv + 4 * LANES <= kc; jv += 4 * LANES) {
                scores4x4(qP, dPad, r, dim, kT, jv, pT);
                scores4x4(gP, vPad, r, vdim, vT, jv, dsT);
            }
            for (; jv < kc; jv += LANES) {
                scores4x1(qP, dPad, r, dim, kT, jv, pT);
                scores4x1(gP, vPad, r, vdim, vT, jv, dsT);
            }
        }
        softmaxGrad(m4);
        keyGrads(gP, vPad, m4, nMax, pT, dVR);
        keyGrads(qP, dPad, m4, nMax, dsT, dKR);
        for (int r = 0; r < m4; r += 4) {
            int dv = 0;
            for (; dv + 4 * LANES <= dPad; dv += 4 * LANES) {
                queryGrad4x4(dqL, r, nMax, dv);
            }
            for (; dv < dPad; dv += LANES) {
                queryGrad4x1(dqL, r, nMax, dv);
            }
        }
        addRows(dq, m);
    }

    /** {@code dq[row r] += dqL[r]} ({@code D} features at {@code rowDq[r]}) for the {@code m} real rows. */
    private void addRows(float[] dq, int m) {
        final int dp = dPad;
        final int whole = dim / LANES * LANES;
        for (int r = 0; r < m; r++) {
            final int o = rowDq[r];
            final int at = r * dp;
            int x = 0;
            for (; x < whole; x += LANES) {
                FloatVector.fromArray(SPECIES, dq, o + x).add(FloatVector.fromArray(SPECIES, dqL, at + x)).intoArray(dq, o + x);
            }
            for (; x < dim; x++) {
                dq[o + x] += dqL[at + x];
            }
        }
    }

    /** {@code acc[j][d] += Σ_r in[r][j]·src[r][d]} for keys {@code j < n} (rounded up to 4) and every feature vector. */
    private void keyGrads(float[] src, int stride, int rows, int n, float[] in, float[] acc) {
        for (int j = 0; j < n; j += 4) {
            int dv = 0;
            for (; dv + 4 * LANES <= stride; dv += 4 * LANES) {
                keyGrad4x4(src, stride, rows, in, acc, j, dv);
            }
            for (; dv < stride; dv += LANES) {
                keyGrad4x1(src, stride, rows, in, acc, j, dv);
            }
        }
    }

    /**
     * Lane-wise over keys, row by row: {@code P = exp(S − LSE)} by the forward's polynomial (its
     * clamp makes far-below-the-maximum scores exactly 0), {@code P = 0} on keys past the row's end
     * (and on the padded lanes), {@code dS = P·(dP − D)}; {@code P} replaces {@code S}, {@code dS}
     * replaces {@code dP}.
     */
    private void softmaxGrad(int rows) {
        final int kc = kCap;
        final float[] s = pT;
        final float[] g = dsT;
        for (int r = 0; r < rows; r++) {
            FloatVector lse = FloatVector.broadcast(SPECIES, rowLse[r]);
            FloatVector delta = FloatVector.broadcast(SPECIES, rowDelta[r]);
            float end = rowEnd[r];
            for (int jv = 0, at = r * kc; jv < kc; jv += LANES, at += LANES) {
                FloatVector x = FloatVector.fromArray(SPECIES, s, at).sub(lse);
                FloatVector k = x.fma(TileKernel.LOG2E, TileKernel.ROUND);
                FloatVector rr = k.sub(TileKernel.ROUND).fma(TileKernel.NEG_LN2, x);
                FloatVector e = rr.fma(TileKernel.E5, TileKernel.E4).fma(rr, TileKernel.E3).fma(rr, TileKernel.E2)
                        .fma(rr, TileKernel.E1).fma(rr, TileKernel.E0);
                FloatVector pv = e.mul(k.reinterpretAsInts().add(TileKernel.EXP_BIAS).lanewise(VectorOperators.LSHL, 23)
                        .reinterpretAsFloats()).blend(0f, x.compare(VectorOperators.LT, TileKernel.EXP_LOW));
                if (jv + LANES > end) {
                    pv = pv.blend(0f, FloatVector.fromArray(SPECIES, iota, jv).compare(VectorOperators.GE, end));
                }
                pv.intoArray(s, at);
                pv.mul(FloatVector.fromArray(SPECIES, g, at).sub(delta)).intoArray(g, at);
            }
        }
    }

    /** Rows {@code r .. r+3} × key lanes {@code jv .. jv+4L}: {@code out[r][j] = Σ_d src[r][d]·pt[d][j]}. */
    private void scores4x4(float[] src, int stride, int r, int inner, float[] pt, int jv, float[] out) {
        final int kc = kCap;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        final int a0 = r * stride;
        final int a1 = a0 + stride;
        final int a2 = a1 + stride;
        final int a3 = a2 + stride;
        FloatVector c00 = FloatVector.zero(SPECIES);
        FloatVector c01 = c00;
        FloatVector c02 = c00;
        FloatVector c03 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c12 = c00;
        FloatVector c13 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c22 = c00;
        FloatVector c23 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        FloatVector c32 = c00;
        FloatVector c33 = c00;
        for (int d = 0, pp = jv; d < inner; d++, pp += kc) {
            FloatVector t0 = FloatVector.fromArray(SPECIES, pt, pp);
            FloatVector t1 = FloatVector.fromArray(SPECIES, pt, pp + l1);
            FloatVector t2 = FloatVector.fromArray(SPECIES, pt, pp + l2);
            FloatVector t3 = FloatVector.fromArray(SPECIES, pt, pp + l3);
            FloatVector b = FloatVector.broadcast(SPECIES, src[a0 + d]);
            c00 = t0.fma(b, c00);
            c01 = t1.fma(b, c01);
            c02 = t2.fma(b, c02);
            c03 = t3.fma(b, c03);
            b = FloatVector.broadcast(SPECIES, src[a1 + d]);
            c10 = t0.fma(b, c10);
            c11 = t1.fma(b, c11);
            c12 = t2.fma(b, c12);
            c13 = t3.fma(b, c13);
            b = FloatVector.broadcast(SPECIES, src[a2 + d]);
            c20 = t0.fma(b, c20);
            c21 = t1.fma(b, c21);
            c22 = t2.fma(b, c22);
            c23 = t3.fma(b, c23);
            b = FloatVector.broadcast(SPECIES, src[a3 + d]);
            c30 = t0.fma(b, c30);
            c31 = t1.fma(b, c31);
            c32 = t2.fma(b, c32);
            c33 = t3.fma(b, c33);
        }
        final int o0 = r * kc + jv;
        c00.intoArray(out, o0);
        c01.intoArray(out, o0 + l1);
        c02.intoArray(out, o0 + l2);
        c03.intoArray(out, o0 + l3);
        c10.intoArray(out, o0 + kc);
        c11.intoArray(out, o0 + kc + l1);
        c12.intoArray(out, o0 + kc + l2);
        c13.intoArray(out, o0 + kc + l3);
        c20.intoArray(out, o0 + 2 * kc);
        c21.intoArray(out, o0 + 2 * kc + l1);
        c22.intoArray(out, o0 + 2 * kc + l2);
        c23.intoArray(out, o0 + 2 * kc + l3);
        c30.intoArray(out, o0 + 3 * kc);
        c31.intoArray(out, o0 + 3 * kc + l1);
        c32.intoArray(out, o0 + 3 * kc + l2);
        c33.intoArray(out, o0 + 3 * kc + l3);
    }

    /** Rows {@code r .. r+3} × key lanes {@code jv .. jv+1L}: {@code out[r][j] = Σ_d src[r][d]·pt[d][j]}. */
    private void scores4x1(float[] src, int stride, int r, int inner, float[] pt, int jv, float[] out) {
        final int kc = kCap;
        final int a0 = r * stride;
        final int a1 = a0 + stride;
        final int a2 = a1 + stride;
        final int a3 = a2 + stride;
        FloatVector c00 = FloatVector.zero(SPECIES);
        FloatVector c10 = c00;
        FloatVector c20 = c00;
        FloatVector c30 = c00;
        for (int d = 0, pp = jv; d < inner; d++, pp += kc) {
            FloatVector t0 = FloatVector.fromArray(SPECIES, pt, pp);
            FloatVector b = FloatVector.broadcast(SPECIES, src[a0 + d]);
            c00 = t0.fma(b, c00);
            b = FloatVector.broadcast(SPECIES, src[a1 + d]);
            c10 = t0.fma(b, c10);
            b = FloatVector.broadcast(SPECIES, src[a2 + d]);
            c20 = t0.fma(b, c20);
            b = FloatVector.broadcast(SPECIES, src[a3 + d]);
            c30 = t0.fma(b, c30);
        }
        final int o0 = r * kc + jv;
        c00.intoArray(out, o0);
        c10.intoArray(out, o0 + kc);
        c20.intoArray(out, o0 + 2 * kc);
        c30.intoArray(out, o0 + 3 * kc);
    }

    /** Keys {@code j .. j+3} × features {@code dv .. dv+4L}: {@code acc[j][d] += Σ_r in[r][j]·src[r][d]} (both row-major, stride {@code stride}). */
    private void keyGrad4x4(float[] src, int stride, int rows, float[] in, float[] acc, int j, int dv) {
        final int kc = kCap;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        final int o0 = j * stride + dv;
        final int o1 = o0 + stride;
        final int o2 = o1 + stride;
        final int o3 = o2 + stride;
        FloatVector c00 = FloatVector.fromArray(SPECIES, acc, o0);
        FloatVector c01 = FloatVector.fromArray(SPECIES, acc, o0 + l1);
        FloatVector c02 = FloatVector.fromArray(SPECIES, acc, o0 + l2);
        FloatVector c03 = FloatVector.fromArray(SPECIES, acc, o0 + l3);
        FloatVector c10 = FloatVector.fromArray(SPECIES, acc, o1);
        FloatVector c11 = FloatVector.fromArray(SPECIES, acc, o1 + l1);
        FloatVector c12 = FloatVector.fromArray(SPECIES, acc, o1 + l2);
        FloatVector c13 = FloatVector.fromArray(SPECIES, acc, o1 + l3);
        FloatVector c20 = FloatVector.fromArray(SPECIES, acc, o2);
        FloatVector c21 = FloatVector.fromArray(SPECIES, acc, o2 + l1);
        FloatVector c22 = FloatVector.fromArray(SPECIES, acc, o2 + l2);
        FloatVector c23 = FloatVector.fromArray(SPECIES, acc, o2 + l3);
        FloatVector c30 = FloatVector.fromArray(SPECIES, acc, o3);
        FloatVector c31 = FloatVector.fromArray(SPECIES, acc, o3 + l1);
        FloatVector c32 = FloatVector.fromArray(SPECIES, acc, o3 + l2);
        FloatVector c33 = FloatVector.fromArray(SPECIES, acc, o3 + l3);
        for (int r = 0, ip = j, sp = dv; r < rows; r++, ip += kc, sp += stride) {
            FloatVector t0 = FloatVector.fromArray(SPECIES, src, sp);
            FloatVector t1 = FloatVector.fromArray(SPECIES, src, sp + l1);
            FloatVector t2 = FloatVector.fromArray(SPECIES, src, sp + l2);
            FloatVector t3 = FloatVector.fromArray(SPECIES, src, sp + l3);
            FloatVector b = FloatVector.broadcast(SPECIES, in[ip]);
            c00 = t0.fma(b, c00);
            c01 = t1.fma(b, c01);
            c02 = t2.fma(b, c02);
            c03 = t3.fma(b, c03);
            b = FloatVector.broadcast(SPECIES, in[ip + 1]);
            c10 = t0.fma(b, c10);
            c11 = t1.fma(b, c11);
            c12 = t2.fma(b, c12);
            c13 = t3.fma(b, c13);
            b = FloatVector.broadcast(SPECIES, in[ip + 2]);
            c20 = t0.fma(b, c20);
            c21 = t1.fma(b, c21);
            c22 = t2.fma(b, c22);
            c23 = t3.fma(b, c23);
            b = FloatVector.broadcast(SPECIES, in[ip + 3]);
            c30 = t0.fma(b, c30);
            c31 = t1.fma(b, c31);
            c32 = t2.fma(b, c32);
            c33 = t3.fma(b, c33);
        }
        c00.intoArray(acc, o0);
        c01.intoArray(acc, o0 + l1);
        c02.intoArray(acc, o0 + l2);
        c03.intoArray(acc, o0 + l3);
        c10.intoArray(acc, o1);
        c11.intoArray(acc, o1 + l1);
        c12.intoArray(acc, o1 + l2);
        c13.intoArray(acc, o1 + l3);
        c20.intoArray(acc, o2);
        c21.intoArray(acc, o2 + l1);
        c22.intoArray(acc, o2 + l2);
        c23.intoArray(acc, o2 + l3);
        c30.intoArray(acc, o3);
        c31.intoArray(acc, o3 + l1);
        c32.intoArray(acc, o3 + l2);
        c33.intoArray(acc, o3 + l3);
    }

    /** Keys {@code j .. j+3} × features {@code dv .. dv+1L}: {@code acc[j][d] += Σ_r in[r][j]·src[r][d]} (both row-major, stride {@code stride}). */
    private void keyGrad4x1(float[] src, int stride, int rows, float[] in, float[] acc, int j, int dv) {
        final int kc = kCap;
        final int o0 = j * stride + dv;
        final int o1 = o0 + stride;
        final int o2 = o1 + stride;
        final int o3 = o2 + stride;
        FloatVector c00 = FloatVector.fromArray(SPECIES, acc, o0);
        FloatVector c10 = FloatVector.fromArray(SPECIES, acc, o1);
        FloatVector c20 = FloatVector.fromArray(SPECIES, acc, o2);
        FloatVector c30 = FloatVector.fromArray(SPECIES, acc, o3);
        for (int r = 0, ip = j, sp = dv; r < rows; r++, ip += kc, sp += stride) {
            FloatVector t0 = FloatVector.fromArray(SPECIES, src, sp);
            FloatVector b = FloatVector.broadcast(SPECIES, in[ip]);
            c00 = t0.fma(b, c00);
            b = FloatVector.broadcast(SPECIES, in[ip + 1]);
            c10 = t0.fma(b, c10);
            b = FloatVector.broadcast(SPECIES, in[ip + 2]);
            c20 = t0.fma(b, c20);
            b = FloatVector.broadcast(SPECIES, in[ip + 3]);
            c30 = t0.fma(b, c30);
        }
        c00.intoArray(acc, o0);
        c10.intoArray(acc, o1);
        c20.intoArray(acc, o2);
        c30.intoArray(acc, o3);
    }

    /** Rows {@code r .. r+3} × features {@code dv .. dv+4L}: {@code dq[r][d] = Σ_{j<n} dS[r][j]·kR[j][d]}. */
    private void queryGrad4x4(float[] dq, int r, int n, int dv) {
        final int kc = kCap;
        final int dp = dPad;
        final float[] kr = kR;
        final float[] g = dsT;
        final int l1 = LANES;
        final int l2 = 2 * LANES;
        final int l3 = 3 * LANES;
        final int o0 = (r + 0) * dp + dv;
        final int o1 = (r + 1) * dp + dv;
        final int o2 = (r + 2) * dp + dv;
        final int o3 = (r + 3) * dp + dv;
        FloatVector c00 = FloatVector.zero(SPECIES);
        FloatVector c01 = c00;
        FloatVector c02 = c00;
        FloatVector c03 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c12 = c00;
        FloatVector c13 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c22 = c00;
        FloatVector c23 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        FloatVector c32 = c00;
        FloatVector c33 = c00;
        final int s0 = r * kc;
        final int s1 = s0 + kc;
        final int s2 = s1 + kc;
        final int s3 = s2 + kc;
        for (int j = 0, kp = dv; j < n; j++, kp += dp) {
            FloatVector t0 = FloatVector.fromArray(SPECIES, kr, kp);
            FloatVector t1 = FloatVector.fromArray(SPECIES, kr, kp + l1);
            FloatVector t2 = FloatVector.fromArray(SPECIES, kr, kp + l2);
            FloatVector t3 = FloatVector.fromArray(SPECIES, kr, kp + l3);
            FloatVector b = FloatVector.broadcast(SPECIES, g[s0 + j]);
            c00 = t0.fma(b, c00);
            c01 = t1.fma(b, c01);
            c02 = t2.fma(b, c02);
            c03 = t3.fma(b, c03);
            b = FloatVector.broadcast(SPECIES, g[s1 + j]);
            c10 = t0.fma(b, c10);
            c11 = t1.fma(b, c11);
            c12 = t2.fma(b, c12);
            c13 = t3.fma(b, c13);
            b = FloatVector.broadcast(SPECIES, g[s2 + j]);
            c20 = t0.fma(b, c20);
            c21 = t1.fma(b, c21);
            c22 = t2.fma(b, c22);
            c23 = t3.fma(b, c23);
            b = FloatVector.broadcast(SPECIES, g[s3 + j]);
            c30 = t0.fma(b, c30);
            c31 = t1.fma(b, c31);
            c32 = t2.fma(b, c32);
            c33 = t3.fma(b, c33);
        }
        c00.intoArray(dq, o0);
        c01.intoArray(dq, o0 + l1);
        c02.intoArray(dq, o0 + l2);
        c03.intoArray(dq, o0 + l3);
        c10.intoArray(dq, o1);
        c11.intoArray(dq, o1 + l1);
        c12.intoArray(dq, o1 + l2);
        c13.intoArray(dq, o1 + l3);
        c20.intoArray(dq, o2);
        c21.intoArray(dq, o2 + l1);
        c22.intoArray(dq, o2 + l2);
        c23.intoArray(dq, o2 + l3);
        c30.intoArray(dq, o3);
        c31.intoArray(dq, o3 + l1);
        c32.intoArray(dq, o3 + l2);
        c33.intoArray(dq, o3 + l3);
    }

    /** Rows {@code r .. r+3} × features {@code dv .. dv+1L}: {@code dq[r][d] = Σ_{j<n} dS[r][j]·kR[j][d]}. */
    private void queryGrad4x1(float[] dq, int r, int n, int dv) {
        final int kc = kCap;
        final int dp = dPad;
        final float[] kr = kR;
        final float[] g = dsT;
        final int o0 = (r + 0) * dp + dv;
        final int o1 = (r + 1) * dp + dv;
        final int o2 = (r + 2) * dp + dv;
        final int o3 = (r + 3) * dp + dv;
        FloatVector c00 = FloatVector.zero(SPECIES);
        FloatVector c10 = c00;
        FloatVector c20 = c00;
        FloatVector c30 = c00;
        final int s0 = r * kc;
        final int s1 = s0 + kc;
        final int s2 = s1 + kc;
        final int s3 = s2 + kc;
        for (int j = 0, kp = dv; j < n; j++, kp += dp) {
            FloatVector t0 = FloatVector.fromArray(SPECIES, kr, kp);
            FloatVector b = FloatVector.broadcast(SPECIES, g[s0 + j]);
            c00 = t0.fma(b, c00);
            b = FloatVector.broadcast(SPECIES, g[s1 + j]);
            c10 = t0.fma(b, c10);
            b = FloatVector.broadcast(SPECIES, g[s2 + j]);
            c20 = t0.fma(b, c20);
            b = FloatVector.broadcast(SPECIES, g[s3 + j]);
            c30 = t0.fma(b, c30);
        }
        c00.intoArray(dq, o0);
        c10.intoArray(dq, o1);
        c20.intoArray(dq, o2);
        c30.intoArray(dq, o3);
    }
}
