// starling_bwd_{delta,dq,dkdv}: the backward pass, float32.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

// ---------------------------------------------------------------------------------------------
// Backward (DESIGN section 4): float32 on CUDA cores, FlashAttention-2 style over the plan, for
// every precision of the forward (its LSE is what P is recomputed from). Three launches, each
// owning every element it writes, so there are no atomics and every sum runs in a fixed order:
// the gradients are deterministic.
//   starling_bwd_delta: D_i = sum_d dO_id O_id per row (0 for a row that contributes nothing:
//       padded or LSE = -inf; a NaN D is a NaN, as in the float64 oracle, never a skip mark);
//   starling_bwd_dq: per whole-row unit (a WorkPlan without split rows) and 64-row tile, over the
//       row's key blocks in CSR order: P = exp(s q.k - LSE), dP = dO.v, dS = P (dP - D),
//       dQ = s sum_j dS k_j;
//   starling_bwd_dkdv: per (batch, kv head, 64-key tile of a key block), over the query heads of
//       its group in ascending order and, per head, the query blocks of its column
//       (LayoutColumns, ascending): dV = sum_i P dO_i, dK = s sum_i dS q_i.
// The same skip rule as backend-reference's BackwardKernel (padded and empty rows only), sums in
// float32 (it sums in float64).
// Masked pairs are never multiplied (no 0 * NaN), and the token mask is the forward's: causal
// (causal_key_end), key and query lengths, tail blocks. Shared memory: SharedLayout.forBackwardDq
// and forBackwardDkdv, in the Params of each launch.
// ---------------------------------------------------------------------------------------------

// Row (b, h, i) of dO.
__device__ __forceinline__ const float* dout_row(const Params& p, int b, int h, int i) {
    return p.dout + b * p.gsb + h * p.gsh + (long long)i * p.gsn;
}

// Grid: (ceil(Nq / (BWD_THREADS / 32)), B * Hq); one warp per row, a lane per feature.
extern "C" __global__ void __launch_bounds__(BWD_THREADS) starling_bwd_delta(const Params p)
{
    const int b = blockIdx.y / p.Hq;
    const int h = blockIdx.y % p.Hq;
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int i = blockIdx.x * (BWD_THREADS / 32) + warp;
    if (i >= p.Nq) return;   // uniform over the warp; no barrier below
    const float* g = dout_row(p, b, h, i);
    const float* o = output_row(p, b, h, i);
    float sum = 0.f;
    for (int d = lane; d < p.Dv; d += 32) sum = fmaf(g[d], o[d], sum);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);   // a fixed tree
    if (lane == 0) {
        const long long row = lse_index(p, b, h, i);
        const bool skip = i >= query_length(p, b) || p.lse[row] == -CUDART_INF_F;
        p.delta[row] = skip ? 0.f : sum;
    }
}

// Grid: (unitsPerLayout * tilesPerBlock, B * Hq) over whole-row units; thread (r, s) = (tid / 4,
// tid % 4) owns row r of the tile, computes keys s, s+4, ... of each key tile and owns dQ features
// s, s+4, ... Shared: Q [64][ldq] (pre-scaled), K [tileK][ldq], V [tileK][ldv], dO [64][ldo] (at
// smO), dS [64][lds] (at smS).
extern "C" __global__ void __launch_bounds__(BWD_THREADS) starling_bwd_dq(const Params p)
{
    unsigned char* base = shared_base();
    float* sQ = (float*)(base + p.smQ);
    float* sK = (float*)(base + p.smK);
    float* sV = (float*)(base + p.smV);
    float* sG = (float*)(base + p.smO);
    float* sDS = (float*)(base + p.smS);
    const int ldq = p.ldq;
    const int ldv = p.ldv;
    const int ldo = p.ldo;
    const int lds = p.lds;
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

    const float* qBase = p.q + t.b * p.qsb + t.h * p.qsh;
    for (int idx = tid; idx < t.rows * D; idx += blockDim.x) {
        int rr = idx / D, d = idx - rr * D;
        sQ[rr * ldq + d] = qBase[(long long)(t.i0 + rr) * p.qsn + d] * p.scale;
    }
    for (int idx = tid; idx < t.rows * Dv; idx += blockDim.x) {
        int rr = idx / Dv, d = idx - rr * Dv;
        sG[rr * ldo + d] = dout_row(p, t.b, t.h, t.i0 + rr)[d];
    }
    __syncthreads();   // sQ and sG hold the tile's rows

    // The row contributes when it is valid, its LSE is not -inf and its dO is not zero (as
    // BackwardKernel.queryBlock; a row whose D itself is NaN is computed, and its dQ is NaN).
    float lse = -CUDART_INF_F;
    float dlt = 0.f;
    if (rowValid) {
        const long long row = lse_index(p, t.b, t.h, i);
        lse = p.lse[row];
        dlt = p.delta[row];
    }
    const bool live = rowValid && lse != -CUDART_INF_F;
    const int rowEnd = live ? row_key_end(p, t.b, i) : 0;
    const float* kBase = p.k + t.b * p.ksb + t.kvh * p.ksh;
    const float* vBase = p.v + t.b * p.vsb + t.kvh * p.vsh;

    float acc[32];
#pragma unroll
    for (int u = 0; u < 32; ++u) acc[u] = 0.f;

    for (int pos = t.begin; pos < t.end; ++pos) {
        const int kb = p.keyBlocks[pos];
        const int j0 = key_begin(p, kb);
        const int jEnd = lastRow >= t.i0 ? block_key_end(p, t.b, lastRow, kb) : j0;   // uniform over the CTA
        for (int c0 = j0; c0 < jEnd; c0 += p.tileK) {
            const int n = min(p.tileK, jEnd - c0);
            __syncthreads();   // every thread is done with the previous sK, sV and sDS
            for (int idx = tid; idx < n * D; idx += blockDim.x) {
                int jj = idx / D, d = idx - jj * D;
                sK[jj * ldq + d] = kBase[(long long)(c0 + jj) * p.ksn + d];
            }
            for (int idx = tid; idx < n * Dv; idx += blockDim.x) {
                int jj = idx / Dv, d = idx - jj * Dv;
                sV[jj * ldv + d] = vBase[(long long)(c0 + jj) * p.vsn + d];
            }
            __syncthreads();   // sK and sV hold this key tile
            const int myCount = max(0, min(n, rowEnd - c0));   // keys of this tile the row reads: a prefix
#pragma unroll
            for (int u = 0; u < MAX_TILE_K / 4; ++u) {
                const int jj = s + 4 * u;
                if (jj < myCount) {
                    const float* qr = sQ + r * ldq;
                    const float* kr = sK + jj * ldq;
                    float dot = 0.f;
                    for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
                    const float pv = expf(dot - lse);
                    const float* gr = sG + r * ldo;
                    const float* vr = sV + jj * ldv;
                    float dp = 0.f;
                    for (int d = 0; d < Dv; ++d) dp = fmaf(gr[d], vr[d], dp);
                    sDS[r * lds + jj] = pv * (dp - dlt);
                }
            }
            __syncwarp();   // the row's four lanes (one warp) see each other's dS
            for (int jj = 0; jj < myCount; ++jj) {
                const float ds = sDS[r * lds + jj];
                const float* kr = sK + jj * ldq;
#pragma unroll
                for (int u = 0; u < 32; ++u) {
                    const int d = s + 4 * u;
                    if (d < D) acc[u] = fmaf(ds, kr[d], acc[u]);
                }
            }
        }
    }
    if (r >= t.rows) return;
    float* dqRow = p.dq + t.b * p.dqsb + t.h * p.dqsh + (long long)i * p.dqsn;
#pragma unroll
    for (int u = 0; u < 32; ++u) {
        const int d = s + 4 * u;
        if (d < D) dqRow[d] = live ? p.scale * acc[u] : 0.f;
    }
}

// Grid: (keyBlockCount * keyTilesPerBlock, B * Hkv); thread (c, s) = (tid / 4, tid % 4) owns key c
// of the tile, computes rows s, s+4, ... of each chunk of bwdRows query rows and owns dK and dV
// features s, s+4, ... Shared: K [64][ldq], V [64][ldv], Q [bwdRows][ldq] (pre-scaled), dO
// [bwdRows][ldo] (at smO), P [bwdRows][ldp], dS [bwdRows][lds] (at smS), and per chunk row its
// LSE (smM), D (smL) and the keys of this tile it reads (int, smSeen; 0 for a skipped row).
extern "C" __global__ void __launch_bounds__(BWD_THREADS, 1) starling_bwd_dkdv(const Params p)
{
    unsigned char* base = shared_base();
    float* sQ = (float*)(base + p.smQ);
    float* sK = (float*)(base + p.smK);
    float* sV = (float*)(base + p.smV);
    float* sG = (float*)(base + p.smO);
    float* sP = (float*)(base + p.smP);
    float* sDS = (float*)(base + p.smS);
    float* sLse = (float*)(base + p.smM);
    float* sDelta = (float*)(base + p.smL);
    int* sCount = (int*)(base + p.smSeen);
    const int ldq = p.ldq;
    const int ldv = p.ldv;
    const int ldo = p.ldo;
    const int ldp = p.ldp;
    const int lds = p.lds;
    const int D = p.D;
    const int Dv = p.Dv;
    const int R = p.bwdRows;

    const int kvHeads = p.Hq / p.group;
    const int b = blockIdx.y / kvHeads;
    const int kvh = blockIdx.y % kvHeads;
    const int kb = blockIdx.x / p.keyTilesPerBlock;
    const int j0 = key_begin(p, kb) + (blockIdx.x % p.keyTilesPerBlock) * MAX_TILE_K;
    const int nk = min(MAX_TILE_K, key_end(p, kb) - j0);
    if (nk <= 0) return;   // uniform over the CTA: a tile past a tail block's end

    const int tid = threadIdx.x;
    const int c = tid >> 2;
    const int s = tid & 3;
    const float* kBase = p.k + b * p.ksb + kvh * p.ksh;
    const float* vBase = p.v + b * p.vsb + kvh * p.vsh;
    for (int idx = tid; idx < nk * D; idx += blockDim.x) {
        int jj = idx / D, d = idx - jj * D;
        sK[jj * ldq + d] = kBase[(long long)(j0 + jj) * p.ksn + d];
    }
    for (int idx = tid; idx < nk * Dv; idx += blockDim.x) {
        int jj = idx / Dv, d = idx - jj * Dv;
        sV[jj * ldv + d] = vBase[(long long)(j0 + jj) * p.vsn + d];
    }

    float dkAcc[32];
    float dvAcc[32];
#pragma unroll
    for (int u = 0; u < 32; ++u) {
        dkAcc[u] = 0.f;
        dvAcc[u] = 0.f;
    }
    const int qLen = query_length(p, b);
    for (int h = kvh * p.group; h < (kvh + 1) * p.group; ++h) {   // the group's query heads, in order
        const int hl = p.headLayouts == 1 ? 0 : h;
        const int* starts = p.colStarts + (long long)hl * (p.keyBlockCount + 1);
        const float* qBase = p.q + b * p.qsb + h * p.qsh;
        for (int at = starts[kb]; at < starts[kb + 1]; ++at) {   // the column's query blocks, ascending
            const int qb = p.colQueryBlocks[at];
            const int rowsEnd = min(min((qb + 1) * p.qBlock, p.Nq), qLen);   // padded rows contribute nothing
            for (int i0 = qb * p.qBlock; i0 < rowsEnd; i0 += R) {
                const int rows = min(R, rowsEnd - i0);
                __syncthreads();   // every thread is done with the previous chunk (and sK, sV are written)
                for (int idx = tid; idx < rows * D; idx += blockDim.x) {
                    int rr = idx / D, d = idx - rr * D;
                    sQ[rr * ldq + d] = qBase[(long long)(i0 + rr) * p.qsn + d] * p.scale;
                }
                for (int idx = tid; idx < rows * Dv; idx += blockDim.x) {
                    int rr = idx / Dv, d = idx - rr * Dv;
                    sG[rr * ldo + d] = dout_row(p, b, h, i0 + rr)[d];
                }
                for (int rr = tid; rr < rows; rr += blockDim.x) {
                    const long long row = lse_index(p, b, h, i0 + rr);
                    const float l = p.lse[row];
                    sLse[rr] = l;
                    sDelta[rr] = p.delta[row];
                    // A padded or empty row reads no key (its LSE is -inf), whatever dO holds.
                    sCount[rr] = i0 + rr >= query_length(p, b) || l == -CUDART_INF_F
                            ? 0 : max(0, min(nk, block_key_end(p, b, i0 + rr, kb) - j0));
                }
                __syncthreads();   // the chunk's Q, dO, LSE, D and key counts are in shared memory
                for (int r = s; r < rows; r += 4) {
                    float pv = 0.f;
                    float ds = 0.f;
                    if (c < sCount[r]) {
                        const float* qr = sQ + r * ldq;
                        const float* kr = sK + c * ldq;
                        float dot = 0.f;
                        for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
                        pv = expf(dot - sLse[r]);
                        const float* gr = sG + r * ldo;
                        const float* vr = sV + c * ldv;
                        float dp = 0.f;
                        for (int d = 0; d < Dv; ++d) dp = fmaf(gr[d], vr[d], dp);
                        ds = pv * (dp - sDelta[r]);
                    }
                    sP[r * ldp + c] = pv;
                    sDS[r * lds + c] = ds;
                }
                __syncwarp();   // the key's four lanes (one warp) see each other's P and dS
                for (int r = 0; r < rows; ++r) {
                    if (c < sCount[r]) {   // only pairs the row reads: a masked pair never multiplies a NaN
                        const float pv = sP[r * ldp + c];
                        const float ds = sDS[r * lds + c];
                        const float* gr = sG + r * ldo;
                        const float* qr = sQ + r * ldq;
#pragma unroll
                        for (int u = 0; u < 32; ++u) {
                            const int d = s + 4 * u;
                            if (d < Dv) dvAcc[u] = fmaf(pv, gr[d], dvAcc[u]);
                            if (d < D) dkAcc[u] = fmaf(ds, qr[d], dkAcc[u]);   // Q is pre-scaled: dK = s sum dS q
                        }
                    }
                }
            }
        }
    }
    if (c >= nk) return;
    const int j = j0 + c;
    float* dkRow = p.dk + b * p.dksb + kvh * p.dksh + (long long)j * p.dksn;
    float* dvRow = p.dv + b * p.dvsb + kvh * p.dvsh + (long long)j * p.dvsn;
#pragma unroll
    for (int u = 0; u < 32; ++u) {
        const int d = s + 4 * u;
        if (d < D) dkRow[d] = dkAcc[u];
        if (d < Dv) dvRow[d] = dvAcc[u];
    }
}
