// Starling block-sparse attention kernels (DESIGN.md section 2), driven through the CUDA driver API.
//
// One thread block (CTA) per (batch, query head, 64-row query tile); a query block larger than 64
// rows is split into several tiles. Each CTA walks its query block's allowed key blocks from the
// CSR layout in key tiles of `tileK` (<= 64) keys, keeps the online-softmax state (running max m,
// running sum l) and the output tile on chip, and writes O and LSE once. No N x N buffer, no
// atomics, a fixed reduction order: results are deterministic.
//
// Layout packing (done on the host): rowStart holds, for head layout hl and query block qb, the
// absolute index into cols of the block's first key block at rowStart[hl * (nQueryBlocks + 1) + qb].
//
// Masking, exactly as DESIGN section 2: keys j >= min(Nk, keyLens[b]) are never read; with causal,
// key j is allowed for query i only if j <= i + Nk - Nq; rows i >= queryLens[b] and rows with no
// allowed key give O = 0 and LSE = -inf.

#include <cuda_bf16.h>
#include <mma.h>
#include <math_constants.h>
#include <climits>

using namespace nvcuda;

#define TILE_Q 64
#define MAX_TILE_K 64

__device__ __forceinline__ float nan_max(float a, float b) {
    return (a != a || b != b) ? CUDART_NAN_F : fmaxf(a, b);
}

// ---------------------------------------------------------------------------------------------
// fp32: CUDA cores, 256 threads, 4 threads per query row. Thread (r, s) computes the scores of
// keys s, s+4, ... of the tile and owns output dims s, s+4, ..., so D and Dv may be any value up
// to 128. Shared memory: Q tile [64][D+1] (pre-scaled), K tile [tileK][D+1], V tile [tileK][Dv],
// P [64][tileK+1].
// ---------------------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(256)
starling_fp32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
              float* __restrict__ out, float* __restrict__ lse,
              const int* __restrict__ rowStart, const int* __restrict__ cols,
              const int* __restrict__ keyLens, const int* __restrict__ queryLens,
              long long qsb, long long qsh, long long qsn,
              long long ksb, long long ksh, long long ksn,
              long long vsb, long long vsh, long long vsn,
              long long osb, long long osh, long long osn,
              int Hq, int group, int Nq, int Nk, int D, int Dv,
              int qBlock, int kBlock, int nQueryBlocks, int tilesPerBlock, int headLayouts,
              int causal, float scale, int tileK)
{
    extern __shared__ float smem[];
    const int Dp = D + 1;
    const int Pp = tileK + 1;
    float* sQ = smem;
    float* sK = sQ + TILE_Q * Dp;
    float* sV = sK + tileK * Dp;
    float* sP = sV + tileK * Dv;

    const int b = blockIdx.y / Hq;
    const int h = blockIdx.y % Hq;
    const int kvh = h / group;
    const int qb = blockIdx.x / tilesPerBlock;
    const int i0 = qb * qBlock + (blockIdx.x % tilesPerBlock) * TILE_Q;
    const int blockEnd = min(qb * qBlock + qBlock, Nq);
    const int rows = min(TILE_Q, blockEnd - i0);
    if (rows <= 0) return;   // uniform over the CTA
    const int qLen = queryLens ? queryLens[b] : Nq;
    const int kLen = min(Nk, keyLens ? keyLens[b] : Nk);
    const int shift = Nk - Nq;

    const int tid = threadIdx.x;
    const int r = tid >> 2;
    const int s = tid & 3;
    const int i = i0 + r;
    const bool rowValid = r < rows && i < qLen;
    const long long rowLimit = causal ? (long long)i + shift : (long long)INT_MAX;   // last allowed key
    const long long ctaLimit = causal ? (long long)(i0 + rows - 1) + shift : (long long)INT_MAX;

    const float* qBase = q + b * qsb + h * qsh;
    for (int idx = tid; idx < rows * D; idx += blockDim.x) {
        int rr = idx / D, d = idx - rr * D;
        sQ[rr * Dp + d] = qBase[(long long)(i0 + rr) * qsn + d] * scale;
    }
    const float* kBase = k + b * ksb + kvh * ksh;
    const float* vBase = v + b * vsb + kvh * vsh;

    float m = -CUDART_INF_F;
    float l = 0.f;
    float acc[32];
#pragma unroll
    for (int t = 0; t < 32; ++t) acc[t] = 0.f;

    const int hl = headLayouts == 1 ? 0 : h;
    const int rs = rowStart[hl * (nQueryBlocks + 1) + qb];
    const int re = rowStart[hl * (nQueryBlocks + 1) + qb + 1];
    for (int p = rs; p < re; ++p) {
        const int j0 = cols[p] * kBlock;
        long long jEndL = min(j0 + kBlock, kLen);
        if (causal) jEndL = min(jEndL, ctaLimit + 1);
        const int jEnd = (int)jEndL;
        for (int c0 = j0; c0 < jEnd; c0 += tileK) {
            const int n = min(tileK, jEnd - c0);
            __syncthreads();
            for (int idx = tid; idx < n * D; idx += blockDim.x) {
                int jj = idx / D, d = idx - jj * D;
                sK[jj * Dp + d] = kBase[(long long)(c0 + jj) * ksn + d];
            }
            for (int idx = tid; idx < n * Dv; idx += blockDim.x) {
                int jj = idx / Dv, d = idx - jj * Dv;
                sV[jj * Dv + d] = vBase[(long long)(c0 + jj) * vsn + d];
            }
            __syncthreads();
            // Keys of this tile the row may see: a prefix of length myCount.
            long long lim = rowValid ? min((long long)n, rowLimit - c0 + 1) : 0;
            const int myCount = (int)max(0LL, lim);
            float sc[16];
            float bmax = -CUDART_INF_F;
#pragma unroll
            for (int t = 0; t < 16; ++t) {
                const int jj = s + 4 * t;
                sc[t] = -CUDART_INF_F;
                if (jj < myCount) {
                    float dot = 0.f;
                    const float* qr = sQ + r * Dp;
                    const float* kr = sK + jj * Dp;
                    for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
                    sc[t] = dot;
                    bmax = nan_max(bmax, dot);
                }
            }
            bmax = nan_max(bmax, __shfl_xor_sync(0xffffffffu, bmax, 1));
            bmax = nan_max(bmax, __shfl_xor_sync(0xffffffffu, bmax, 2));
            const float mnew = nan_max(m, bmax);
            float psum = 0.f;
#pragma unroll
            for (int t = 0; t < 16; ++t) {
                const int jj = s + 4 * t;
                if (jj < myCount) {
                    float pv = expf(sc[t] - mnew);
                    sP[r * Pp + jj] = pv;
                    psum += pv;
                }
            }
            psum += __shfl_xor_sync(0xffffffffu, psum, 1);
            psum += __shfl_xor_sync(0xffffffffu, psum, 2);
            __syncwarp();
            if (myCount > 0) {
                const float corr = (m == -CUDART_INF_F) ? 0.f : expf(m - mnew);
                l = l * corr + psum;
                m = mnew;
#pragma unroll
                for (int t = 0; t < 32; ++t) acc[t] *= corr;
                for (int jj = 0; jj < myCount; ++jj) {
                    const float pv = sP[r * Pp + jj];
                    const float* vr = sV + jj * Dv;
#pragma unroll
                    for (int t = 0; t < 32; ++t) {
                        const int d = s + 4 * t;
                        if (d < Dv) acc[t] = fmaf(pv, vr[d], acc[t]);
                    }
                }
            }
        }
    }
    if (r >= rows) return;
    float* oRow = out + b * osb + h * osh + (long long)i * osn;
    const bool empty = !rowValid || l == 0.f;
    const float inv = empty ? 0.f : 1.f / l;
#pragma unroll
    for (int t = 0; t < 32; ++t) {
        const int d = s + 4 * t;
        if (d < Dv) oRow[d] = empty ? 0.f : acc[t] * inv;
    }
    if (lse != nullptr && s == 0) {
        lse[((long long)b * Hq + h) * Nq + i] = empty ? -CUDART_INF_F : m + logf(l);
    }
}

// ---------------------------------------------------------------------------------------------
// Tensor cores (WMMA, fp32 accumulation): T = __nv_bfloat16 (k-step 16) or float read as tf32
// (k-step 8). 128 threads = 4 warps; warp w owns query rows 16w..16w+15 of the tile. Per key tile:
// S = Q K^T on tensor cores into shared memory, the online softmax per row in fp32 (two lanes per
// row), P stored as T, then O += P V on tensor cores, 16 output columns at a time, added into the
// fp32 output tile in shared memory. D and Dv are zero-padded to multiples of 16 in shared memory
// (exact). Values of V that are not finite are replaced by 0 in shared memory and tracked per key,
// so that a masked key with a NaN value cannot leak through 0 * NaN in the product; a row that
// does see such a key gets NaN, as the dense oracle does for NaN.
// ---------------------------------------------------------------------------------------------
template <typename T> struct MmaTraits;
template <> struct MmaTraits<__nv_bfloat16> {
    static constexpr int KSTEP = 16;
    static constexpr int PAD = 8;
    typedef __nv_bfloat16 FragT;
    __device__ static __nv_bfloat16 from(float x) { return __float2bfloat16_rn(x); }
    template <typename F> __device__ static void convert(F&) {}
};
template <> struct MmaTraits<float> {
    static constexpr int KSTEP = 8;
    static constexpr int PAD = 4;
    typedef wmma::precision::tf32 FragT;
    __device__ static float from(float x) { return x; }
    template <typename F> __device__ static void convert(F& f) {
#pragma unroll
        for (int t = 0; t < f.num_elements; ++t) f.x[t] = wmma::__float_to_tf32(f.x[t]);
    }
};

__host__ __device__ inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

template <typename T>
__device__ void mma_body(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                         float* __restrict__ out, float* __restrict__ lse,
                         const int* __restrict__ rowStart, const int* __restrict__ cols,
                         const int* __restrict__ keyLens, const int* __restrict__ queryLens,
                         long long qsb, long long qsh, long long qsn,
                         long long ksb, long long ksh, long long ksn,
                         long long vsb, long long vsh, long long vsn,
                         long long osb, long long osh, long long osn,
                         int Hq, int group, int Nq, int Nk, int D, int Dv,
                         int qBlock, int kBlock, int nQueryBlocks, int tilesPerBlock, int headLayouts,
                         int causal, float scale, int tileK)
{
    typedef MmaTraits<T> Tr;
    typedef typename Tr::FragT FragT;
    constexpr int KS = Tr::KSTEP;
    extern __shared__ __align__(128) unsigned char raw[];
    const int Dpad = round_up(D, 16);
    const int Dvpad = round_up(Dv, 16);
    const int ldq = Dpad + Tr::PAD;      // Q and K rows (elements of T)
    const int ldv = Dvpad + Tr::PAD;     // V rows
    const int ldp = tileK + Tr::PAD;     // P rows
    const int lds = tileK + 4;           // S rows (float)
    const int ldo = Dvpad + 4;           // O rows (float)
    // Dynamic shared memory is only guaranteed 16-byte aligned; WMMA wants 32. The host adds 128 bytes.
    unsigned char* ptr = (unsigned char*)(((size_t)raw + 127) & ~(size_t)127);
    auto take = [&](size_t bytes) { unsigned char* p0 = ptr; ptr += (bytes + 127) / 128 * 128; return p0; };
    T* sQ = (T*)take(sizeof(T) * TILE_Q * ldq);
    T* sK = (T*)take(sizeof(T) * tileK * ldq);
    T* sV = (T*)take(sizeof(T) * tileK * ldv);
    float* sS = (float*)take(sizeof(float) * TILE_Q * lds);
    T* sP = (T*)take(sizeof(T) * TILE_Q * ldp);
    float* sO = (float*)take(sizeof(float) * TILE_Q * ldo);
    float* sTmp = (float*)take(sizeof(float) * 4 * 16 * 16);
    float* sM = (float*)take(sizeof(float) * TILE_Q);
    float* sL = (float*)take(sizeof(float) * TILE_Q);
    int* sBadRow = (int*)take(sizeof(int) * TILE_Q);
    int* sBadKey = (int*)take(sizeof(int) * MAX_TILE_K);

    const int b = blockIdx.y / Hq;
    const int h = blockIdx.y % Hq;
    const int kvh = h / group;
    const int qb = blockIdx.x / tilesPerBlock;
    const int i0 = qb * qBlock + (blockIdx.x % tilesPerBlock) * TILE_Q;
    const int blockEnd = min(qb * qBlock + qBlock, Nq);
    const int rows = min(TILE_Q, blockEnd - i0);
    if (rows <= 0) return;
    const int qLen = queryLens ? queryLens[b] : Nq;
    const int kLen = min(Nk, keyLens ? keyLens[b] : Nk);
    const int shift = Nk - Nq;
    const long long ctaLimit = causal ? (long long)(i0 + rows - 1) + shift : (long long)INT_MAX;

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;

    const float* qBase = q + b * qsb + h * qsh;
    for (int idx = tid; idx < TILE_Q * Dpad; idx += blockDim.x) {
        int rr = idx / Dpad, d = idx - rr * Dpad;
        float x = (rr < rows && d < D) ? qBase[(long long)(i0 + rr) * qsn + d] * scale : 0.f;
        sQ[rr * ldq + d] = Tr::from(x);
    }
    for (int idx = tid; idx < TILE_Q * Dvpad; idx += blockDim.x) {
        int rr = idx / Dvpad, d = idx - rr * Dvpad;
        sO[rr * ldo + d] = 0.f;
    }
    if (tid < TILE_Q) {
        sM[tid] = -CUDART_INF_F;
        sL[tid] = 0.f;
        sBadRow[tid] = 0;
    }
    const float* kBase = k + b * ksb + kvh * ksh;
    const float* vBase = v + b * vsb + kvh * vsh;

    // Softmax lanes: two per row of the warp's 16 rows.
    const int myRowInWarp = lane >> 1;
    const int half = lane & 1;
    const int r = warp * 16 + myRowInWarp;
    const int i = i0 + r;
    const bool rowValid = r < rows && i < qLen;
    const long long rowLimit = causal ? (long long)i + shift : (long long)INT_MAX;

    const int hl = headLayouts == 1 ? 0 : h;
    const int rs = rowStart[hl * (nQueryBlocks + 1) + qb];
    const int re = rowStart[hl * (nQueryBlocks + 1) + qb + 1];
    for (int p = rs; p < re; ++p) {
        const int j0 = cols[p] * kBlock;
        long long jEndL = min(j0 + kBlock, kLen);
        if (causal) jEndL = min(jEndL, ctaLimit + 1);
        const int jEnd = (int)jEndL;
        for (int c0 = j0; c0 < jEnd; c0 += tileK) {
            const int n = min(tileK, jEnd - c0);
            __syncthreads();
            if (tid < MAX_TILE_K) sBadKey[tid] = 0;
            __syncthreads();
            for (int idx = tid; idx < tileK * Dpad; idx += blockDim.x) {
                int jj = idx / Dpad, d = idx - jj * Dpad;
                float x = (jj < n && d < D) ? kBase[(long long)(c0 + jj) * ksn + d] : 0.f;
                sK[jj * ldq + d] = Tr::from(x);
            }
            for (int idx = tid; idx < tileK * Dvpad; idx += blockDim.x) {
                int jj = idx / Dvpad, d = idx - jj * Dvpad;
                float x = (jj < n && d < Dv) ? vBase[(long long)(c0 + jj) * vsn + d] : 0.f;
                if (!isfinite(x)) {
                    sBadKey[jj] = 1;
                    x = 0.f;
                }
                sV[jj * ldv + d] = Tr::from(x);
            }
            __syncthreads();

            // S = Q K^T for this warp's 16 rows.
            for (int c = 0; c < tileK / 16; ++c) {
                wmma::fragment<wmma::accumulator, 16, 16, KS, float> sf;
                wmma::fill_fragment(sf, 0.f);
                for (int d = 0; d < Dpad; d += KS) {
                    wmma::fragment<wmma::matrix_a, 16, 16, KS, FragT, wmma::row_major> af;
                    wmma::fragment<wmma::matrix_b, 16, 16, KS, FragT, wmma::col_major> bf;
                    wmma::load_matrix_sync(af, sQ + warp * 16 * ldq + d, ldq);
                    wmma::load_matrix_sync(bf, sK + c * 16 * ldq + d, ldq);
                    Tr::convert(af);
                    Tr::convert(bf);
                    wmma::mma_sync(sf, af, bf, sf);
                }
                wmma::store_matrix_sync(sS + warp * 16 * lds + c * 16, sf, lds, wmma::mem_row_major);
            }
            __syncwarp();

            // Online softmax, two lanes per row, each over half of the tile's keys.
            long long lim = rowValid ? min((long long)n, rowLimit - c0 + 1) : 0;
            const int myCount = (int)max(0LL, lim);
            const int halfLen = tileK / 2;
            const int jBegin = half * halfLen;
            float bmax = -CUDART_INF_F;
            for (int jj = jBegin; jj < jBegin + halfLen; ++jj) {
                if (jj < myCount) bmax = nan_max(bmax, sS[r * lds + jj]);
            }
            bmax = nan_max(bmax, __shfl_xor_sync(0xffffffffu, bmax, 1));
            const float mOld = sM[r];
            const float mnew = nan_max(mOld, bmax);
            float psum = 0.f;
            int bad = 0;
            for (int jj = jBegin; jj < jBegin + halfLen; ++jj) {
                float pv = 0.f;
                if (jj < myCount) {
                    pv = expf(sS[r * lds + jj] - mnew);
                    bad |= sBadKey[jj];
                }
                T pt = Tr::from(pv);
                sP[r * ldp + jj] = pt;
                psum += pv;
            }
            psum += __shfl_xor_sync(0xffffffffu, psum, 1);
            bad |= __shfl_xor_sync(0xffffffffu, bad, 1);
            const float corr = (myCount == 0) ? 1.f : ((mOld == -CUDART_INF_F) ? 0.f : expf(mOld - mnew));
            if (myCount > 0) {
                for (int d = half; d < Dvpad; d += 2) sO[r * ldo + d] *= corr;
            }
            __syncwarp();
            if (half == 0 && myCount > 0) {
                sL[r] = sL[r] * corr + psum;
                sM[r] = mnew;
                if (bad) sBadRow[r] = 1;
            }

            // O += P V, 16 output columns at a time.
            float* tmp = sTmp + warp * 256;
            for (int c = 0; c < Dvpad / 16; ++c) {
                wmma::fragment<wmma::accumulator, 16, 16, KS, float> of;
                wmma::fill_fragment(of, 0.f);
                for (int kk = 0; kk < tileK; kk += KS) {
                    wmma::fragment<wmma::matrix_a, 16, 16, KS, FragT, wmma::row_major> pf;
                    wmma::fragment<wmma::matrix_b, 16, 16, KS, FragT, wmma::row_major> vf;
                    wmma::load_matrix_sync(pf, sP + warp * 16 * ldp + kk, ldp);
                    wmma::load_matrix_sync(vf, sV + kk * ldv + c * 16, ldv);
                    Tr::convert(pf);
                    Tr::convert(vf);
                    wmma::mma_sync(of, pf, vf, of);
                }
                wmma::store_matrix_sync(tmp, of, 16, wmma::mem_row_major);
                __syncwarp();
                for (int e = lane; e < 256; e += 32) {
                    int rr = e >> 4, cc = e & 15;
                    sO[(warp * 16 + rr) * ldo + c * 16 + cc] += tmp[e];
                }
                __syncwarp();
            }
        }
    }
    __syncthreads();
    for (int idx = tid; idx < rows * Dv; idx += blockDim.x) {
        int rr = idx / Dv, d = idx - rr * Dv;
        int row = i0 + rr;
        float l = sL[rr];
        bool empty = row >= qLen || l == 0.f;
        float val = empty ? 0.f : (sBadRow[rr] ? CUDART_NAN_F : sO[rr * ldo + d] / l);
        out[b * osb + h * osh + (long long)row * osn + d] = val;
    }
    if (lse != nullptr) {
        for (int rr = tid; rr < rows; rr += blockDim.x) {
            int row = i0 + rr;
            float l = sL[rr];
            bool empty = row >= qLen || l == 0.f;
            lse[((long long)b * Hq + h) * Nq + row] = empty ? -CUDART_INF_F : (sBadRow[rr] ? CUDART_NAN_F : sM[rr] + logf(l));
        }
    }
}

#define MMA_PARAMS const float* q, const float* k, const float* v, float* out, float* lse, \
    const int* rowStart, const int* cols, const int* keyLens, const int* queryLens, \
    long long qsb, long long qsh, long long qsn, long long ksb, long long ksh, long long ksn, \
    long long vsb, long long vsh, long long vsn, long long osb, long long osh, long long osn, \
    int Hq, int group, int Nq, int Nk, int D, int Dv, int qBlock, int kBlock, int nQueryBlocks, \
    int tilesPerBlock, int headLayouts, int causal, float scale, int tileK
#define MMA_ARGS q, k, v, out, lse, rowStart, cols, keyLens, queryLens, qsb, qsh, qsn, ksb, ksh, ksn, \
    vsb, vsh, vsn, osb, osh, osn, Hq, group, Nq, Nk, D, Dv, qBlock, kBlock, nQueryBlocks, tilesPerBlock, \
    headLayouts, causal, scale, tileK

extern "C" __global__ void __launch_bounds__(128) starling_bf16(MMA_PARAMS) { mma_body<__nv_bfloat16>(MMA_ARGS); }
extern "C" __global__ void __launch_bounds__(128) starling_tf32(MMA_PARAMS) { mma_body<float>(MMA_ARGS); }
