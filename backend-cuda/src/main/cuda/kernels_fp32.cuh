// starling_fp32: CUDA cores, any head dim.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

// ---------------------------------------------------------------------------------------------
// fp32: CUDA cores, FP32_THREADS threads, 4 per query row. Thread (r, s) computes the scores of
// keys s, s+4, ... of the tile and owns output dims s, s+4, ..., so D and Dv may be any value up
// to 128. Shared memory: Q tile [64][ldq] (pre-scaled), K tile [tileK][ldq], V tile [tileK][ldv],
// P [64][ldp]. Values are used as they are, so a non-finite value feature reaches that feature
// of the rows that read it and nothing else.
// ---------------------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(FP32_THREADS) starling_fp32(const Params p)
{
    unsigned char* base = shared_base();
    float* sQ = (float*)(base + p.smQ);
    float* sK = (float*)(base + p.smK);
    float* sV = (float*)(base + p.smV);
    float* sP = (float*)(base + p.smP);
    const int ldq = p.ldq;
    const int ldv = p.ldv;
    const int ldp = p.ldp;
    const int D = p.D;
    const int Dv = p.Dv;

    Tile t;
    if (!tile_of(p, t)) return;   // uniform over the CTA
    const int qLen = query_length(p, t.b);
    const int lastRow = min(t.i0 + t.rows, qLen) - 1;   // the tile's last valid row reads the most keys

    const int tid = threadIdx.x;
    const int r = tid >> 2;
    const int s = tid & 3;
    const int i = t.i0 + r;
    const bool rowValid = r < t.rows && i < qLen;
    const int rowEnd = rowValid ? row_key_end(p, t.b, i) : 0;

    const float* qBase = p.q + t.b * p.qsb + t.h * p.qsh;
    for (int idx = tid; idx < t.rows * D; idx += blockDim.x) {
        int rr = idx / D, d = idx - rr * D;
        sQ[rr * ldq + d] = qBase[(long long)(t.i0 + rr) * p.qsn + d] * p.scale;
    }
    const float* kBase = p.k + t.b * p.ksb + t.kvh * p.ksh;
    const float* vBase = p.v + t.b * p.vsb + t.kvh * p.vsh;

    float m = -CUDART_INF_F;
    float l = 0.f;
    bool seen = false;
    float acc[32];
#pragma unroll
    for (int u = 0; u < 32; ++u) acc[u] = 0.f;

    for (int pos = t.begin; pos < t.end; ++pos) {
        const int kb = p.keyBlocks[pos];
        const int j0 = key_begin(p, kb);
        const int jEnd = lastRow >= t.i0 ? block_key_end(p, t.b, lastRow, kb) : j0;   // uniform over the CTA
        for (int c0 = j0; c0 < jEnd; c0 += p.tileK) {
            const int n = min(p.tileK, jEnd - c0);
            __syncthreads();   // every thread is done with the previous sK, sV (and sQ is written)
            for (int idx = tid; idx < n * D; idx += blockDim.x) {
                int jj = idx / D, d = idx - jj * D;
                sK[jj * ldq + d] = kBase[(long long)(c0 + jj) * p.ksn + d];
            }
            for (int idx = tid; idx < n * Dv; idx += blockDim.x) {
                int jj = idx / Dv, d = idx - jj * Dv;
                sV[jj * ldv + d] = vBase[(long long)(c0 + jj) * p.vsn + d];
            }
            __syncthreads();   // sK and sV hold this key tile
            // Keys of this tile the row may read: a prefix of length myCount.
            const int myCount = max(0, min(n, rowEnd - c0));
            float sc[16];
            float bmax = -CUDART_INF_F;
#pragma unroll
            for (int u = 0; u < 16; ++u) {
                const int jj = s + 4 * u;
                sc[u] = -CUDART_INF_F;
                if (jj < myCount) {
                    float dot = 0.f;
                    const float* qr = sQ + r * ldq;
                    const float* kr = sK + jj * ldq;
                    for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
                    sc[u] = dot;
                    bmax = nan_max(bmax, dot);
                }
            }
            bmax = nan_max(bmax, __shfl_xor_sync(0xffffffffu, bmax, 1));
            bmax = nan_max(bmax, __shfl_xor_sync(0xffffffffu, bmax, 2));
            const float mNew = nan_max(m, bmax);
            const float shift = softmax_shift(mNew);
            float psum = 0.f;
#pragma unroll
            for (int u = 0; u < 16; ++u) {
                const int jj = s + 4 * u;
                if (jj < myCount) {
                    float pv = expf(sc[u] - shift);
                    sP[r * ldp + jj] = pv;
                    psum += pv;
                }
            }
            psum += __shfl_xor_sync(0xffffffffu, psum, 1);
            psum += __shfl_xor_sync(0xffffffffu, psum, 2);
            __syncwarp();   // the row's four lanes (one warp) see each other's sP entries
            if (myCount > 0) {
                const float corr = softmax_rescale(m, mNew);
                l = l * corr + psum;
                m = mNew;
                seen = true;
#pragma unroll
                for (int u = 0; u < 32; ++u) acc[u] *= corr;
                for (int jj = 0; jj < myCount; ++jj) {
                    const float pv = sP[r * ldp + jj];
                    const float* vr = sV + jj * ldv;
#pragma unroll
                    for (int u = 0; u < 32; ++u) {
                        const int d = s + 4 * u;
                        if (d < Dv) acc[u] = fmaf(pv, vr[d], acc[u]);
                    }
                }
            }
        }
    }
    if (r >= t.rows) return;
    float* oRow = result_row(p, t, i);
#pragma unroll
    for (int u = 0; u < 32; ++u) {
        const int d = s + 4 * u;
        if (d < Dv) oRow[d] = finish_out(seen, m, l, acc[u]);
    }
    float* lseAt = result_lse(p, t, i);
    if (lseAt != nullptr && s == 0) *lseAt = finish_lse(seen, m, l);
}
