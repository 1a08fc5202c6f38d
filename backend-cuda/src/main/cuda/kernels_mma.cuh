// starling_mma_*: mma.sync on register fragments (FlashAttention-2 style).
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once


// =============================================================================================
// mma.sync kernels (sm_80+), FlashAttention-2 style, on the same units, masks and softmax policy.
//
// A CTA of MMA_BLOCK_M / 16 warps computes one TILE_Q-row tile of a unit's query block (the WMMA
// kernels' grid, read heads-fastest: tile_of_heads_fastest); warp w owns rows 16w..16w+15. Per K/V tile of kBlockN keys: S = Q K^T with mma.sync into registers (the
// accumulator fragment: thread (g = lane / 4, tq = lane % 4) holds rows g and g + 8, columns
// 8j + 2tq and 8j + 2tq + 1 of each 8-column tile j), the online softmax on those registers (a
// row's four threads reduce with two shuffles), P converted in registers into the A operand of
// O += P V, O kept in registers to the end. exp2 with the scale folded in: x = s * scale * log2(e)
// (one multiply, any sign of scale), p = exp2(x - max); maxima are kept in log2 units and LSE is
// max * ln 2 + ln(l).
//
// Loads: the Q tile once, then K and V tiles of each unit key tile by key tile with cp.async into
// `stages` shared buffers (2 or 3), stages - 1 tiles ahead of the math, one commit group per tile
// (empty groups keep the count when the unit runs out of tiles). Rows past a key block, past Nk,
// or past the query block are zero-filled (cp.async src-size 0): nothing past a tensor is read.
// Operands come from shared memory with ldmatrix (V with .trans; the tf32 kernels read V with
// scalar loads: ldmatrix cannot transpose 32-bit elements). Shared rows are padded by 16 bytes
// to an odd number of 16-byte chunks, so ldmatrix and the tf32 V loads are free of bank conflicts.
//
// Masking: a score the row may not read (token mask: key length, causal through causal_key_end,
// partial tail blocks) is set to -inf before the max, so a NaN or inf score of a key the row does
// not read never reaches it; the maximum uses fmaxf (NaN-ignoring), and a NaN score still poisons
// its row through p = exp2(NaN) = NaN in l and every feature, so finish_out / finish_lse give the
// OnlineSoftmax policy. Non-finite values of V: in a tile where every valid row reads every key
// (a "clean" tile: most tiles), p * v gives exactly the oracle's result. In any other tile a
// masked key's p = 0 would give 0 * NaN = NaN, so each thread checks the V chunks it copied; when
// any is non-finite (rare; __syncthreads_or), each thread adds p * v for the non-finite features
// of the keys its rows read, then the non-finite values are zeroed in shared memory before the
// product, as the wmma kernels do.
// =============================================================================================

// Shared-memory address of a generic pointer into shared memory (for cp.async and ldmatrix).
__device__ __forceinline__ unsigned smem_addr(const void* ptr) {
    return static_cast<unsigned>(__cvta_generic_to_shared(ptr));
}

// 16 bytes global -> shared, asynchronously; fill = false writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async_16(unsigned dst, const void* src, bool fill) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(fill ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's newest commit groups are still in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 b16 matrices; lanes 8m..8m+7 give the row addresses of matrix m, register m receives it.
__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(unsigned (&r)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// float -> tf32 (round to nearest, ties away), as the tensor cores expect.
__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}

// One element type's tensor-core step (fp32 accumulation) and conversions.
template <typename T> struct MmaOp;
template <> struct MmaOp<__nv_bfloat16> {
    // c += a b, m16n8k16.
    __device__ static void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    // Two values as one 32-bit operand register, lo in the low half.
    __device__ static unsigned pack(float lo, float hi) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<unsigned*>(&h);
    }
    __device__ static __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
    __device__ static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
    // Masks of the exponent of each element of a 32-bit word: all ones means inf or NaN.
    static constexpr unsigned kExpLo = 0x7F80u, kExpHi = 0x7F800000u;
};
template <> struct MmaOp<__half> {
    __device__ static void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ static unsigned pack(float lo, float hi) {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<unsigned*>(&h);
    }
    __device__ static __half from_float(float x) { return __float2half_rn(x); }
    __device__ static float to_float(__half x) { return __half2float(x); }
    static constexpr unsigned kExpLo = 0x7C00u, kExpHi = 0x7C000000u;
};
template <> struct MmaOp<float> {
    // c += a b, m16n8k8 with tf32 operands (already converted with to_tf32).
    __device__ static void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
        asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ static float to_float(float x) { return x; }
    static constexpr unsigned kExpLo = 0x7F800000u, kExpHi = 0x7F800000u;
};

// Whether a 32-bit word of elements of T holds an inf or NaN; and the word with those zeroed.
template <typename T> __device__ __forceinline__ bool word_nonfinite(unsigned w) {
    return (~w & MmaOp<T>::kExpLo) == 0 || (~w & MmaOp<T>::kExpHi) == 0;
}
template <typename T> __device__ __forceinline__ unsigned word_finite(unsigned w) {
    if constexpr (sizeof(T) == 4) return (~w & MmaOp<T>::kExpHi) == 0 ? 0u : w;
    if ((~w & MmaOp<T>::kExpLo) == 0) w &= 0xFFFF0000u;
    if ((~w & MmaOp<T>::kExpHi) == 0) w &= 0x0000FFFFu;
    return w;
}

// Compile-time shape of one mma specialisation, with its budgets checked by the compiler.
// SharedLayout.forMma (Java) computes the same carve-up: Q at smQ, K stage s at smK + s * smStage,
// V stage s at smV + s * smStage, each row kRowBytes apart.
template <typename T, int kHeadDim_, int kBlockM_, int kBlockN_>
struct MmaShape {
    static constexpr int kHeadDim = kHeadDim_;
    static constexpr int kBlockM = kBlockM_;
    static constexpr int kBlockN = kBlockN_;
    static constexpr int kWarps = kBlockM / 16;
    static constexpr int kThreads = kWarps * 32;
    static constexpr int kElem = (int)sizeof(T);
    static constexpr bool kTf32 = kElem == 4;
    static constexpr int kRowBytes = kHeadDim * kElem + MMA_ROW_PAD_BYTES;   // one shared row of Q, K or V
    static constexpr int kChunks = kHeadDim * kElem / 16;                   // 16-byte cp.async chunks per row
    static constexpr int kPerChunk = 16 / kElem;                            // elements per chunk
    static constexpr int kSteps = kHeadDim * kElem / 32;                    // k-steps of S = Q K^T (32 bytes each)
    static constexpr int kNTiles = kBlockN / 8;                             // 8-key tiles of S
    static constexpr int kDTiles = kHeadDim / 8;                            // 8-feature tiles of O
    static constexpr int kQBytes = (kBlockM * kRowBytes + SMEM_ALIGN - 1) / SMEM_ALIGN * SMEM_ALIGN;
    static constexpr int kStageBytes = (kBlockN * kRowBytes + SMEM_ALIGN - 1) / SMEM_ALIGN * SMEM_ALIGN;
    static constexpr int smem_bytes(int stages) { return SMEM_ALIGN + kQBytes + 2 * stages * kStageBytes; }
    // Fragment registers a thread keeps across a tile: S and O (Q is read from shared memory per
    // k-step, as FlashAttention-2 does: keeping it in registers spills at D = 128).
    static constexpr int kFragmentRegisters = 4 * (kNTiles + kDTiles);

    static_assert(kBlockM == TILE_Q && kBlockM == MMA_BLOCK_M, "a CTA covers one TILE_Q-row tile of a query block");
    static_assert(kBlockN % 16 == 0 && kBlockN <= MAX_TILE_K, "key tile of whole 16-key steps");
    static_assert(kHeadDim % 32 == 0, "head dim of whole 16-feature pairs, and ldv = kHeadDim + 4 = 4 (mod 32) for tf32");
    static_assert((kRowBytes / 16) % 2 == 1, "padded rows are an odd number of 16-byte chunks: conflict-free ldmatrix");
    static_assert((kBlockM * kChunks) % kThreads == 0 && (kBlockN * kChunks) % kThreads == 0,
                  "every thread issues the same number of cp.async per tile");
    static_assert(smem_bytes(2) <= 227 * 1024, "two stages fit the shared memory of an sm_90 CTA");
    static_assert(kTf32 || smem_bytes(2) <= 99 * 1024, "16-bit, two stages: fit sm_86/sm_89 (99 KB)");
    static_assert(kFragmentRegisters <= 160, "fragments leave registers for addresses and the softmax (no spills)");
};

// One K/V tile of a unit: keys [c0, c0 + min(tileK, jEnd - c0)) of key block keyBlocks[pos].
struct KeyCursor {
    int pos, c0, jEnd;
};

// Moves c to the next non-empty key tile of the unit (the same sequence of tiles as the loops of
// the wmma kernels); false past the unit's last. Start with {t.begin - 1, 0, 0}.
__device__ __forceinline__ bool next_key_tile(const Params& p, const Tile& t, int lastRow, int tileK, KeyCursor& c) {
    c.c0 += tileK;
    while (c.c0 >= c.jEnd) {
        if (++c.pos >= t.end) return false;
        const int kb = p.keyBlocks[c.pos];
        c.c0 = key_begin(p, kb);
        c.jEnd = lastRow >= t.i0 ? block_key_end(p, t.b, lastRow, kb) : c.c0;   // uniform over the CTA
    }
    return true;
}

// Inputs as the mma kernels read them: float32 for tf32, the 16-bit tensors otherwise.
template <typename T> __device__ __forceinline__ const T* mma_q(const Params& p) {
    return sizeof(T) == 4 ? (const T*)p.q : (const T*)p.q16;
}
template <typename T> __device__ __forceinline__ const T* mma_k(const Params& p) {
    return sizeof(T) == 4 ? (const T*)p.k : (const T*)p.k16;
}
template <typename T> __device__ __forceinline__ const T* mma_v(const Params& p) {
    return sizeof(T) == 4 ? (const T*)p.v : (const T*)p.v16;
}

template <typename T, typename S>
__device__ __forceinline__ void mma_forward(const Params& p)
{
    typedef MmaOp<T> Op;
    constexpr int kBlockN = S::kBlockN;
    constexpr int kRowBytes = S::kRowBytes;

    Tile t;
    if (!tile_of_heads_fastest(p, t)) return;   // uniform over the CTA
    const int qLen = query_length(p, t.b);
    const int lastRow = min(t.i0 + t.rows, qLen) - 1;   // the tile's last valid row reads the most keys
    // Row key ends grow with the row (causal_key_end), so the tile's first row reads the fewest.
    const int firstRowEnd = lastRow >= t.i0 ? row_key_end(p, t.b, t.i0) : 0;

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int g = lane >> 2;    // fragment row (and row + 8)
    const int tq = lane & 3;    // thread in the row's quad: columns 2tq, 2tq + 1 of each 8-column tile

    unsigned char* base = shared_base();
    const unsigned sQ = smem_addr(base + p.smQ);
    const unsigned sK0 = smem_addr(base + p.smK);
    const unsigned sV0 = smem_addr(base + p.smV);
    const int stages = p.stages;

    const T* qg = mma_q<T>(p) + t.b * p.qsb + t.h * p.qsh;
    const T* kg = mma_k<T>(p) + t.b * p.ksb + t.kvh * p.ksh;
    const T* vg = mma_v<T>(p) + t.b * p.vsb + t.kvh * p.vsh;

    // The Q tile: its own commit group, the oldest.
#pragma unroll
    for (int u = 0; u < S::kBlockM * S::kChunks / S::kThreads; ++u) {
        const int x = tid + u * S::kThreads;
        const int r = x / S::kChunks;
        const int ch = x % S::kChunks;
        const bool in = r < t.rows;
        cp_async_16(sQ + r * kRowBytes + ch * 16, qg + (long long)(t.i0 + (in ? r : 0)) * p.qsn + ch * S::kPerChunk, in);
    }
    cp_async_commit();

    // Issues the copies of the K and V tile at cursor c into stage `stage`.
    auto load_kv = [&](int stage, const KeyCursor& c) {
        const int n = min(kBlockN, c.jEnd - c.c0);
        const unsigned sK = sK0 + stage * p.smStage;
        const unsigned sV = sV0 + stage * p.smStage;
#pragma unroll
        for (int u = 0; u < kBlockN * S::kChunks / S::kThreads; ++u) {
            const int x = tid + u * S::kThreads;
            const int r = x / S::kChunks;
            const int ch = x % S::kChunks;
            const bool in = r < n;
            const long long j = c.c0 + (in ? r : 0);
            cp_async_16(sK + r * kRowBytes + ch * 16, kg + j * p.ksn + ch * S::kPerChunk, in);
            cp_async_16(sV + r * kRowBytes + ch * 16, vg + j * p.vsn + ch * S::kPerChunk, in);
        }
    };

    KeyCursor ld = {t.begin - 1, 0, 0};    // the next tile to load
    KeyCursor use = {t.begin - 1, 0, 0};   // the next tile to compute
    for (int s = 0; s < stages - 1; ++s) {
        if (next_key_tile(p, t, lastRow, kBlockN, ld)) load_kv(s, ld);
        cp_async_commit();
    }

    // Q fragments (A operand, row-major 16 x k): lanes 0-15 address rows 0-15 at byte 0 of the
    // k-step, lanes 16-31 the same rows 16 bytes on: registers = (g, k lo), (g + 8, k lo), (g, k hi), (g + 8, k hi).
    // The first tile's barrier below also publishes the Q tile (it lands with or before that tile).
    const unsigned qAddr = sQ + (warp * 16 + (lane & 15)) * kRowBytes + (lane >> 4) * 16;
    // K fragments (B operand, k x 8 "col", i.e. K's rows): lanes 0-7 keys 0-7 at byte 0, 8-15 keys
    // 0-7 at byte 16, 16-23 keys 8-15 at 0, 24-31 keys 8-15 at 16: b0, b1 of key tile 2j, then of 2j + 1.
    const unsigned kOff = ((lane & 7) + ((lane >> 4) << 3)) * kRowBytes + ((lane >> 3) & 1) * 16;
    // V fragments (B operand of P V, transposed): lanes 0-7 keys 0-7, 8-15 keys 8-15 at feature byte
    // 0, 16-31 the same at byte 16: b0, b1 of feature tile 2j, then of 2j + 1.
    const unsigned vOff = ((lane & 7) + ((lane >> 3) & 1) * 8) * kRowBytes + (lane >> 4) * 16;

    // This thread's two rows (tile rows r and r + 8) and the keys each may read.
    int rowEnd[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int r = warp * 16 + g + 8 * h;
        const int i = t.i0 + r;
        rowEnd[h] = (r < t.rows && i < qLen) ? row_key_end(p, t.b, i) : 0;   // invalid rows read nothing
    }
    float o[S::kDTiles][4];
#pragma unroll
    for (int dt = 0; dt < S::kDTiles; ++dt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) o[dt][e] = 0.f;
    }
    float m[2] = {-CUDART_INF_F, -CUDART_INF_F};   // running max, log2 units
    float l[2] = {0.f, 0.f};                       // this thread's part of the running sum (the quad adds them at the end)
    bool seen[2] = {false, false};                 // the row read at least one key
    const float scaleLog2 = p.scaleLog2;

    int stage = 0;
    int loadStage = stages - 1;
    while (next_key_tile(p, t, lastRow, kBlockN, use)) {
        const int c0 = use.c0;
        const int n = min(kBlockN, use.jEnd - c0);
        if (stages == 3) cp_async_wait<1>(); else cp_async_wait<0>();   // this thread's copies of this tile have landed
        unsigned char* vTile = base + p.smV + stage * p.smStage;
        // A tile is clean when every valid row reads all n keys; only other tiles can leak 0 * NaN.
        const bool clean = lastRow < t.i0 || firstRowEnd >= c0 + n;
        int bad = 0;
        if (!clean) {
#pragma unroll
            for (int u = 0; u < kBlockN * S::kChunks / S::kThreads; ++u) {
                const int x = tid + u * S::kThreads;
                const uint4 w = *reinterpret_cast<const uint4*>(vTile + (x / S::kChunks) * kRowBytes + (x % S::kChunks) * 16);
                bad |= word_nonfinite<T>(w.x) | word_nonfinite<T>(w.y) | word_nonfinite<T>(w.z) | word_nonfinite<T>(w.w);
            }
        }
        // This tile is visible to every warp, and every warp is done with the previous tile's stage,
        // which the next copies overwrite; `bad`: some value of this V tile is inf or NaN.
        bad = __syncthreads_or(bad);
        if (next_key_tile(p, t, lastRow, kBlockN, ld)) load_kv(loadStage, ld);
        cp_async_commit();
        const unsigned sK = sK0 + stage * p.smStage;
        const unsigned sV = sV0 + stage * p.smStage;

        // S = Q K^T: 16 rows x kBlockN keys per warp.
        float s[S::kNTiles][4];
#pragma unroll
        for (int j = 0; j < S::kNTiles; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) s[j][e] = 0.f;
        }
#pragma unroll
        for (int ks = 0; ks < S::kSteps; ++ks) {
            unsigned a[4];
            ldsm_x4(a, qAddr + ks * 32);
            if constexpr (S::kTf32) {
#pragma unroll
                for (int e = 0; e < 4; ++e) a[e] = to_tf32(__uint_as_float(a[e]));
            }
#pragma unroll
            for (int j = 0; j < S::kNTiles / 2; ++j) {
                if (j * 16 < n) {   // uniform: keys past n are masked anyway
                    unsigned b[4];
                    ldsm_x4(b, sK + kOff + j * 16 * kRowBytes + ks * 32);
                    if constexpr (S::kTf32) {
#pragma unroll
                        for (int e = 0; e < 4; ++e) b[e] = to_tf32(__uint_as_float(b[e]));
                    }
                    Op::mma(s[2 * j], a, b[0], b[1]);
                    Op::mma(s[2 * j + 1], a, b[2], b[3]);
                }
            }
        }

        // Online softmax on the fragments. cnt[h]: keys of this tile row h reads (a prefix).
        int cnt[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) cnt[h] = max(0, min(n, rowEnd[h] - c0));
        const bool full = cnt[0] == kBlockN && cnt[1] == kBlockN;
        float mx[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
        for (int j = 0; j < S::kNTiles; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float x = s[j][e] * scaleLog2;
                if (!full && j * 8 + 2 * tq + (e & 1) >= cnt[e >> 1]) x = -CUDART_INF_F;
                s[j][e] = x;
                mx[e >> 1] = fmaxf(mx[e >> 1], x);
            }
        }
        float shift[2];
        float corr[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            const float mNew = fmaxf(m[h], mx[h]);
            corr[h] = softmax_rescale2(m[h], mNew);
            shift[h] = softmax_shift(mNew);
            m[h] = mNew;
            seen[h] = seen[h] || cnt[h] > 0;
        }
        float rowSum[2] = {0.f, 0.f};
#pragma unroll
        for (int j = 0; j < S::kNTiles; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float pv = exp2f(s[j][e] - shift[e >> 1]);
                s[j][e] = pv;
                rowSum[e >> 1] += pv;
            }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) l[h] = l[h] * corr[h] + rowSum[h];
#pragma unroll
        for (int dt = 0; dt < S::kDTiles; ++dt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) o[dt][e] *= corr[e >> 1];
        }

        if (bad) {   // uniform; rare: an inf or NaN value in a tile with masked (row, key) pairs
            const T* vs = reinterpret_cast<const T*>(vTile);
            constexpr int ldv = kRowBytes / S::kElem;
            // p of (row, key 8j + 2q + e) lives in register s[j][e] (row g) or s[j][2 + e] (row g + 8)
            // of thread q of the row's quad: one shuffle per key, register indices known to the compiler.
            for (int q = 0; q < 4; ++q) {
                const int src = (lane & ~3) | q;
#pragma unroll
                for (int j = 0; j < S::kNTiles; ++j) {
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const int jj = j * 8 + 2 * q + e;
                        const float p0 = __shfl_sync(0xffffffffu, s[j][e], src);
                        const float p1 = __shfl_sync(0xffffffffu, s[j][2 + e], src);
                        if (jj < n) {
#pragma unroll
                            for (int dt = 0; dt < S::kDTiles; ++dt) {
#pragma unroll
                                for (int f = 0; f < 2; ++f) {
                                    const float x = Op::to_float(vs[jj * ldv + dt * 8 + 2 * tq + f]);
                                    if (!isfinite(x)) {
                                        if (jj < cnt[0]) o[dt][f] += p0 * x;
                                        if (jj < cnt[1]) o[dt][2 + f] += p1 * x;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            __syncthreads();   // every warp has read the non-finite values of this V tile
#pragma unroll
            for (int u = 0; u < kBlockN * S::kChunks / S::kThreads; ++u) {
                const int x = tid + u * S::kThreads;
                uint4* at = reinterpret_cast<uint4*>(vTile + (x / S::kChunks) * kRowBytes + (x % S::kChunks) * 16);
                uint4 w = *at;
                w.x = word_finite<T>(w.x);
                w.y = word_finite<T>(w.y);
                w.z = word_finite<T>(w.z);
                w.w = word_finite<T>(w.w);
                *at = w;
            }
            __syncthreads();   // this V tile holds finite values only: the product below adds 0 for masked keys
        }

        // O += P V.
        if constexpr (S::kTf32) {
            // m16n8k8 with the keys of each 8-key tile permuted (the sum does not care): k = tq is key
            // 2tq, k = tq + 4 is key 2tq + 1, so the accumulator registers are the A operand as they are.
            const float* vs = reinterpret_cast<const float*>(vTile);
            constexpr int ldv = kRowBytes / 4;
#pragma unroll
            for (int j = 0; j < S::kNTiles; ++j) {
                if (j * 8 < n) {   // uniform
                    const unsigned a[4] = {to_tf32(s[j][0]), to_tf32(s[j][2]), to_tf32(s[j][1]), to_tf32(s[j][3])};
                    const float* v0 = vs + (j * 8 + 2 * tq) * ldv + g;
#pragma unroll
                    for (int dt = 0; dt < S::kDTiles; ++dt) {
                        Op::mma(o[dt], a, to_tf32(v0[dt * 8]), to_tf32(v0[ldv + dt * 8]));
                    }
                }
            }
        } else {
#pragma unroll
            for (int kk = 0; kk < kBlockN / 16; ++kk) {
                if (kk * 16 < n) {   // uniform
                    // The accumulators of key tiles 2kk and 2kk + 1 are the A operand of this k16 step.
                    const unsigned a[4] = {Op::pack(s[2 * kk][0], s[2 * kk][1]), Op::pack(s[2 * kk][2], s[2 * kk][3]),
                                           Op::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                           Op::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
                    for (int dp = 0; dp < S::kDTiles / 2; ++dp) {
                        unsigned b[4];
                        ldsm_x4_trans(b, sV + vOff + kk * 16 * kRowBytes + dp * 32);
                        Op::mma(o[2 * dp], a, b[0], b[1]);
                        Op::mma(o[2 * dp + 1], a, b[2], b[3]);
                    }
                }
            }
        }
        stage = stage + 1 == stages ? 0 : stage + 1;
        loadStage = loadStage + 1 == stages ? 0 : loadStage + 1;
    }

    // Finish each row (OnlineSoftmax.Rows.finish) and write O (and LSE) or the unit's partial.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int r = warp * 16 + g + 8 * h;
        if (r >= t.rows) continue;
        const int i = t.i0 + r;
        float* oRow = result_row(p, t, i);
#pragma unroll
        for (int dt = 0; dt < S::kDTiles; ++dt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) oRow[dt * 8 + 2 * tq + e] = finish_out(seen[h], m[h], l[h], o[dt][2 * h + e]);
        }
        if (tq == 0) {
            float* lseAt = result_lse(p, t, i);
            if (lseAt != nullptr) *lseAt = finish_lse(seen[h], m[h] * CUDART_LN2_F, l[h]);
        }
    }
}

// The specialisations: (symbol, element type, kHeadDim, kBlockN, CTAs per SM the registers must
// allow). MmaSpecialisation.ALL lists the same rows (a test reads these lines). tf32 at D = 128
// takes 32-key tiles: 64 need more than 255 registers and, with two stages, 169 KB of shared memory.
#define STARLING_MMA_KERNEL(name, T, D, BLOCK_N, MIN_BLOCKS)                                          \
    extern "C" __global__ void __launch_bounds__(MMA_BLOCK_M / 16 * 32, MIN_BLOCKS) name(const Params p) { \
        mma_forward<T, MmaShape<T, D, MMA_BLOCK_M, BLOCK_N>>(p);                                        \
    }
STARLING_MMA_KERNEL(starling_mma_bf16_d64, __nv_bfloat16, 64, 64, 3)
STARLING_MMA_KERNEL(starling_mma_bf16_d128, __nv_bfloat16, 128, 64, 2)
STARLING_MMA_KERNEL(starling_mma_fp16_d64, __half, 64, 64, 3)
STARLING_MMA_KERNEL(starling_mma_fp16_d128, __half, 128, 64, 2)
STARLING_MMA_KERNEL(starling_mma_tf32_d64, float, 64, 64, 2)
STARLING_MMA_KERNEL(starling_mma_tf32_d128, float, 128, 32, 2)
