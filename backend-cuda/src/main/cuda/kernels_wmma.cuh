// starling_{tf32,bf16,fp16}[_in16]: WMMA tensor cores with shared-memory round trips.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

// ---------------------------------------------------------------------------------------------
// Tensor cores (WMMA, fp32 accumulation): T = __nv_bfloat16 or __half (k-step 16) or float read
// as tf32 (k-step 8); inputs In = float, or the caller's 16-bit tensors (In = T). MMA_THREADS =
// 4 warps; warp w owns query rows 16w..16w+15 of the tile. Per key tile: S = Q K^T on tensor
// cores into shared memory, the online softmax per row in fp32 (two lanes per row), P stored as
// T, then O += P V on tensor cores, 16 output columns at a time, added into the fp32 output tile
// in shared memory. D and Dv are zero-padded to multiples of 16 (exact). Non-finite values of V
// are replaced by 0 in shared memory and their keys flagged, so that a masked key cannot leak
// 0 * NaN through the product; a row that does read a flagged key adds p * v for exactly the
// non-finite features of that key (read again from global memory), so a NaN or inf reaches only
// that feature of the rows that read it, as the oracle says.
// ---------------------------------------------------------------------------------------------
template <typename T> struct MmaTraits;
template <> struct MmaTraits<__half> {
    static constexpr int KSTEP = 16;
    typedef __half FragT;
    __device__ static __half from(float x) { return __float2half_rn(x); }
    template <typename F> __device__ static void convert(F&) {}
};
template <> struct MmaTraits<__nv_bfloat16> {
    static constexpr int KSTEP = 16;
    typedef __nv_bfloat16 FragT;
    __device__ static __nv_bfloat16 from(float x) { return __float2bfloat16_rn(x); }
    template <typename F> __device__ static void convert(F&) {}
};
template <> struct MmaTraits<float> {
    static constexpr int KSTEP = 8;
    typedef wmma::precision::tf32 FragT;
    __device__ static float from(float x) { return x; }
    template <typename F> __device__ static void convert(F& f) {
#pragma unroll
        for (int u = 0; u < f.num_elements; ++u) f.x[u] = wmma::__float_to_tf32(f.x[u]);
    }
};

// Input element as float: the wmma kernels read float32 inputs (q, k, v) or, for the *_in16
// kernels, the caller's 16-bit inputs (q16, k16, v16).
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
template <typename In> __device__ __forceinline__ const In* input_q(const Params& p) {
    return sizeof(In) == 4 ? (const In*)p.q : (const In*)p.q16;
}
template <typename In> __device__ __forceinline__ const In* input_k(const Params& p) {
    return sizeof(In) == 4 ? (const In*)p.k : (const In*)p.k16;
}
template <typename In> __device__ __forceinline__ const In* input_v(const Params& p) {
    return sizeof(In) == 4 ? (const In*)p.v : (const In*)p.v16;
}

template <typename T, typename In>
__device__ __forceinline__ void wmma_body(const Params& p)
{
    typedef MmaTraits<T> Tr;
    typedef typename Tr::FragT FragT;
    constexpr int KS = Tr::KSTEP;
    unsigned char* base = shared_base();
    T* sQ = (T*)(base + p.smQ);           // [64][ldq]
    T* sK = (T*)(base + p.smK);           // [tileK][ldq]
    T* sV = (T*)(base + p.smV);           // [tileK][ldv]
    float* sS = (float*)(base + p.smS);   // [64][lds]
    T* sP = (T*)(base + p.smP);           // [64][ldp]
    float* sO = (float*)(base + p.smO);   // [64][ldo]
    float* sTmp = (float*)(base + p.smTmp);   // 4 warps x 16 x 16
    float* sM = (float*)(base + p.smM);   // running max per row
    float* sL = (float*)(base + p.smL);   // running sum per row
    int* sSeen = (int*)(base + p.smSeen); // row read at least one key
    int* sBadKey = (int*)(base + p.smBadKey);   // key of the tile has a non-finite value
    const int Dpad = p.dPad;
    const int Dvpad = p.dvPad;
    const int ldq = p.ldq;
    const int ldv = p.ldv;
    const int ldp = p.ldp;
    const int lds = p.lds;
    const int ldo = p.ldo;
    const int tileK = p.tileK;
    const int D = p.D;
    const int Dv = p.Dv;

    Tile t;
    if (!tile_of(p, t)) return;   // uniform over the CTA
    const int qLen = query_length(p, t.b);
    const int lastRow = min(t.i0 + t.rows, qLen) - 1;

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;

    const In* qBase = input_q<In>(p) + t.b * p.qsb + t.h * p.qsh;
    for (int idx = tid; idx < TILE_Q * Dpad; idx += blockDim.x) {
        int rr = idx / Dpad, d = idx - rr * Dpad;
        float x = (rr < t.rows && d < D) ? to_f32(qBase[(long long)(t.i0 + rr) * p.qsn + d]) * p.scale : 0.f;
        sQ[rr * ldq + d] = Tr::from(x);
    }
    for (int idx = tid; idx < TILE_Q * Dvpad; idx += blockDim.x) {
        int rr = idx / Dvpad, d = idx - rr * Dvpad;
        sO[rr * ldo + d] = 0.f;
    }
    if (tid < TILE_Q) {
        sM[tid] = -CUDART_INF_F;
        sL[tid] = 0.f;
        sSeen[tid] = 0;
    }
    const In* kBase = input_k<In>(p) + t.b * p.ksb + t.kvh * p.ksh;
    const In* vBase = input_v<In>(p) + t.b * p.vsb + t.kvh * p.vsh;

    // Softmax lanes: two per row of the warp's 16 rows.
    const int myRowInWarp = lane >> 1;
    const int half = lane & 1;
    const int r = warp * 16 + myRowInWarp;
    const int i = t.i0 + r;
    const bool rowValid = r < t.rows && i < qLen;
    const int rowEnd = rowValid ? row_key_end(p, t.b, i) : 0;

    for (int pos = t.begin; pos < t.end; ++pos) {
        const int kb = p.keyBlocks[pos];
        const int j0 = key_begin(p, kb);
        const int jEnd = lastRow >= t.i0 ? block_key_end(p, t.b, lastRow, kb) : j0;   // uniform over the CTA
        for (int c0 = j0; c0 < jEnd; c0 += tileK) {
            const int n = min(tileK, jEnd - c0);
            __syncthreads();   // every warp is done with the previous sK, sV, sBadKey (and sQ, sO, sM are set)
            if (tid < MAX_TILE_K) sBadKey[tid] = 0;
            __syncthreads();   // sBadKey cleared before the loads flag keys
            for (int idx = tid; idx < tileK * Dpad; idx += blockDim.x) {
                int jj = idx / Dpad, d = idx - jj * Dpad;
                float x = (jj < n && d < D) ? to_f32(kBase[(long long)(c0 + jj) * p.ksn + d]) : 0.f;
                sK[jj * ldq + d] = Tr::from(x);
            }
            for (int idx = tid; idx < tileK * Dvpad; idx += blockDim.x) {
                int jj = idx / Dvpad, d = idx - jj * Dvpad;
                float x = (jj < n && d < Dv) ? to_f32(vBase[(long long)(c0 + jj) * p.vsn + d]) : 0.f;
                if (!isfinite(x)) {
                    sBadKey[jj] = 1;
                    x = 0.f;
                }
                sV[jj * ldv + d] = Tr::from(x);
            }
            __syncthreads();   // sK, sV and sBadKey hold this key tile

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
            __syncwarp();   // the warp's rows of sS are stored

            // Online softmax, two lanes per row, each over half of the tile's keys.
            const int myCount = max(0, min(n, rowEnd - c0));
            const int halfLen = tileK / 2;
            const int jBegin = half * halfLen;
            float bmax = -CUDART_INF_F;
            for (int jj = jBegin; jj < jBegin + halfLen; ++jj) {
                if (jj < myCount) bmax = nan_max(bmax, sS[r * lds + jj]);
            }
            bmax = nan_max(bmax, __shfl_xor_sync(0xffffffffu, bmax, 1));
            const float mOld = sM[r];
            const float mNew = nan_max(mOld, bmax);
            const float shift = softmax_shift(mNew);
            const float corr = softmax_rescale(mOld, mNew);
            float psum = 0.f;
            int bad = 0;
            for (int jj = jBegin; jj < jBegin + halfLen; ++jj) {
                float pv = 0.f;
                if (jj < myCount) {
                    pv = expf(sS[r * lds + jj] - shift);
                    bad |= sBadKey[jj];
                }
                sP[r * ldp + jj] = Tr::from(pv);
                psum += pv;
            }
            psum += __shfl_xor_sync(0xffffffffu, psum, 1);
            bad |= __shfl_xor_sync(0xffffffffu, bad, 1);
            if (myCount > 0) {
                for (int d = half; d < Dvpad; d += 2) sO[r * ldo + d] *= corr;
            }
            __syncwarp();   // sP written, sO rows rescaled, and both lanes of a row have read sM[r]
            if (half == 0 && myCount > 0) {
                sL[r] = sL[r] * corr + psum;
                sM[r] = mNew;
                sSeen[r] = 1;
                if (bad) {
                    // The product below sees 0 for a flagged value; add p * v of exactly its
                    // non-finite features (rare: only rows that read such a key get here).
                    for (int jj = 0; jj < myCount; ++jj) {
                        if (!sBadKey[jj]) continue;
                        const float pv = expf(sS[r * lds + jj] - shift);
                        const In* vr = vBase + (long long)(c0 + jj) * p.vsn;
                        for (int d = 0; d < Dv; ++d) {
                            const float x = to_f32(vr[d]);
                            if (!isfinite(x)) sO[r * ldo + d] += pv * x;
                        }
                    }
                }
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
                __syncwarp();   // tmp stored, and the sO writes above are visible to the warp
                for (int e = lane; e < 256; e += 32) {
                    int rr = e >> 4, cc = e & 15;
                    sO[(warp * 16 + rr) * ldo + c * 16 + cc] += tmp[e];
                }
                __syncwarp();   // tmp read before the next column block overwrites it
            }
        }
    }
    __syncthreads();   // every warp's rows of sO, sM, sL and sSeen are final
    for (int idx = tid; idx < t.rows * Dv; idx += blockDim.x) {
        int rr = idx / Dv, d = idx - rr * Dv;
        result_row(p, t, t.i0 + rr)[d] = finish_out(sSeen[rr] != 0, sM[rr], sL[rr], sO[rr * ldo + d]);
    }
    for (int rr = tid; rr < t.rows; rr += blockDim.x) {
        float* lseAt = result_lse(p, t, t.i0 + rr);
        if (lseAt != nullptr) *lseAt = finish_lse(sSeen[rr] != 0, sM[rr], sL[rr]);
    }
}

// The second bound (4 CTAs per SM, so at most 128 registers a thread) keeps ptxas from choosing 64
// registers and spilling, which it does for these kernels without it (nvcc 13, sm_80..sm_90).
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_bf16(const Params p) { wmma_body<__nv_bfloat16, float>(p); }
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_tf32(const Params p) { wmma_body<float, float>(p); }
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_fp16(const Params p) { wmma_body<__half, float>(p); }
// The caller's inputs are already 16-bit (CudaPlan.forward16) and the shape has no mma kernel.
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_bf16_in16(const Params p) { wmma_body<__nv_bfloat16, __nv_bfloat16>(p); }
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_fp16_in16(const Params p) { wmma_body<__half, __half>(p); }
