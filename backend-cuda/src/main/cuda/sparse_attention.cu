// Starling block-sparse attention kernels (DESIGN.md section 2), driven through the CUDA driver API.
//
// Work: the grid runs over the packed units of dev.starling.api.plan.WorkPlan (x: unit × 64-row
// tile of its query block, y: batch × query head). A unit is one query block against a range of
// its row's allowed key blocks. Each CTA walks its unit's key blocks in key tiles of `tileK`
// (<= 64) keys, keeps the online-softmax state (running max m, running sum l) and the output tile
// on chip, and writes O and LSE once. A unit with slot < 0 covers its whole row and writes the
// output; a unit with slot >= 0 is one part of a long (split) row and writes a normalised partial
// O and its LSE into a workspace slot, which starling_merge then combines (DESIGN section 8). No
// N x N buffer, no atomics, a fixed reduction order: results are deterministic.
//
// Every kernel takes one argument, `Params`, by value. KernelParams.java fills it (the one place
// on the host); the static_asserts after the struct pin its layout, and a Java test checks that
// KernelParams writes the same offsets. The shared-memory carve-up is computed on the host
// (SharedLayout.java) and passed in the struct: the kernels do not re-derive it.
//
// Masking, exactly as DESIGN section 2, in the small device functions below that mirror
// TokenMask.java; the softmax state, finish and merge policy mirror OnlineSoftmax.java.

#include <cuda_bf16.h>
#include <mma.h>
#include <math_constants.h>
#include <cstddef>

using namespace nvcuda;

// Constants shared with the host; HostLogicTest checks that the Java side uses the same values.
#define TILE_Q 64          // query rows per CTA (LaunchGeometry.TILE_Q)
#define MAX_TILE_K 64      // most keys per key tile (LaunchGeometry.MAX_TILE_K)
#define SMEM_ALIGN 128     // shared buffers start on this boundary (SharedLayout.ALIGN)
#define FP32_THREADS 256   // 4 threads per query row (LaunchGeometry.FP32_THREADS)
#define MMA_THREADS 128    // 4 warps of 16 query rows (LaunchGeometry.MMA_THREADS)
#define MERGE_THREADS 128  // 4 warps, one split row at a time each (LaunchGeometry.MERGE_THREADS)
#define UNIT_INTS 4        // WorkPlan.UNIT_INTS: (queryBlock, csrBegin, csrEnd, slot)
#define SPLIT_INTS 4       // WorkPlan.SPLIT_INTS: (queryBlock, firstSlot, parts, 0)

// ---------------------------------------------------------------------------------------------
// The one kernel argument. Field order and types must match KernelParams.java (checked below and
// by HostLogicTest). Strides are in elements: (batch, head, row); features are contiguous.
// ---------------------------------------------------------------------------------------------
struct Params {
    const float* q;          // [B, Hq, Nq, D] in any layout
    const float* k;          // [B, Hkv, Nk, D]
    const float* v;          // [B, Hkv, Nk, Dv]
    float* out;              // [B, Hq, Nq, Dv]
    float* lse;              // [B, Hq, Nq] or nullptr
    const int* units;        // WorkPlan.packUnits(): headLayouts x unitsPerLayout x UNIT_INTS
    const int* keyBlocks;    // WorkPlan.packKeyBlocks(): every head layout's key blocks, concatenated
    const int* splits;       // WorkPlan.packSplits(): headLayouts x splitsPerLayout x SPLIT_INTS
    const int* keyLens;      // [B] or nullptr (every key valid)
    const int* queryLens;    // [B] or nullptr (every query row valid)
    float* wsO;              // split-row workspace: [B*Hq, slotsPerLayout, qBlock, Dv] (nullptr: no splits)
    float* wsLse;            // [B*Hq, slotsPerLayout, qBlock]
    long long qsb, qsh, qsn;
    long long ksb, ksh, ksn;
    long long vsb, vsh, vsn;
    long long osb, osh, osn;
    int Hq, group, Nq, Nk, D, Dv;
    int qBlock, kBlock;
    int unitsPerLayout, splitsPerLayout, slotsPerLayout, headLayouts;
    int tilesPerBlock, tileK, causal;
    float scale;
    // Shared memory, computed by SharedLayout.java: padded dims, leading dimensions (elements),
    // byte offsets of each buffer from the aligned base, and the total dynamic bytes launched.
    int dPad, dvPad, ldq, ldv, ldp, lds, ldo;
    int smQ, smK, smV, smS, smP, smO, smTmp, smM, smL, smSeen, smBadKey, smBytes;
};

// KernelParams.java writes these offsets (HostLogicTest reads this list).
static_assert(offsetof(Params, q) == 0, "Params layout");
static_assert(offsetof(Params, k) == 8, "Params layout");
static_assert(offsetof(Params, v) == 16, "Params layout");
static_assert(offsetof(Params, out) == 24, "Params layout");
static_assert(offsetof(Params, lse) == 32, "Params layout");
static_assert(offsetof(Params, units) == 40, "Params layout");
static_assert(offsetof(Params, keyBlocks) == 48, "Params layout");
static_assert(offsetof(Params, splits) == 56, "Params layout");
static_assert(offsetof(Params, keyLens) == 64, "Params layout");
static_assert(offsetof(Params, queryLens) == 72, "Params layout");
static_assert(offsetof(Params, wsO) == 80, "Params layout");
static_assert(offsetof(Params, wsLse) == 88, "Params layout");
static_assert(offsetof(Params, qsb) == 96, "Params layout");
static_assert(offsetof(Params, qsh) == 104, "Params layout");
static_assert(offsetof(Params, qsn) == 112, "Params layout");
static_assert(offsetof(Params, ksb) == 120, "Params layout");
static_assert(offsetof(Params, ksh) == 128, "Params layout");
static_assert(offsetof(Params, ksn) == 136, "Params layout");
static_assert(offsetof(Params, vsb) == 144, "Params layout");
static_assert(offsetof(Params, vsh) == 152, "Params layout");
static_assert(offsetof(Params, vsn) == 160, "Params layout");
static_assert(offsetof(Params, osb) == 168, "Params layout");
static_assert(offsetof(Params, osh) == 176, "Params layout");
static_assert(offsetof(Params, osn) == 184, "Params layout");
static_assert(offsetof(Params, Hq) == 192, "Params layout");
static_assert(offsetof(Params, group) == 196, "Params layout");
static_assert(offsetof(Params, Nq) == 200, "Params layout");
static_assert(offsetof(Params, Nk) == 204, "Params layout");
static_assert(offsetof(Params, D) == 208, "Params layout");
static_assert(offsetof(Params, Dv) == 212, "Params layout");
static_assert(offsetof(Params, qBlock) == 216, "Params layout");
static_assert(offsetof(Params, kBlock) == 220, "Params layout");
static_assert(offsetof(Params, unitsPerLayout) == 224, "Params layout");
static_assert(offsetof(Params, splitsPerLayout) == 228, "Params layout");
static_assert(offsetof(Params, slotsPerLayout) == 232, "Params layout");
static_assert(offsetof(Params, headLayouts) == 236, "Params layout");
static_assert(offsetof(Params, tilesPerBlock) == 240, "Params layout");
static_assert(offsetof(Params, tileK) == 244, "Params layout");
static_assert(offsetof(Params, causal) == 248, "Params layout");
static_assert(offsetof(Params, scale) == 252, "Params layout");
static_assert(offsetof(Params, dPad) == 256, "Params layout");
static_assert(offsetof(Params, dvPad) == 260, "Params layout");
static_assert(offsetof(Params, ldq) == 264, "Params layout");
static_assert(offsetof(Params, ldv) == 268, "Params layout");
static_assert(offsetof(Params, ldp) == 272, "Params layout");
static_assert(offsetof(Params, lds) == 276, "Params layout");
static_assert(offsetof(Params, ldo) == 280, "Params layout");
static_assert(offsetof(Params, smQ) == 284, "Params layout");
static_assert(offsetof(Params, smK) == 288, "Params layout");
static_assert(offsetof(Params, smV) == 292, "Params layout");
static_assert(offsetof(Params, smS) == 296, "Params layout");
static_assert(offsetof(Params, smP) == 300, "Params layout");
static_assert(offsetof(Params, smO) == 304, "Params layout");
static_assert(offsetof(Params, smTmp) == 308, "Params layout");
static_assert(offsetof(Params, smM) == 312, "Params layout");
static_assert(offsetof(Params, smL) == 316, "Params layout");
static_assert(offsetof(Params, smSeen) == 320, "Params layout");
static_assert(offsetof(Params, smBadKey) == 324, "Params layout");
static_assert(offsetof(Params, smBytes) == 328, "Params layout");
static_assert(sizeof(Params) == 336, "Params layout");

// ---------------------------------------------------------------------------------------------
// Token mask: mirrors dev.starling.api.plan.TokenMask. Every kernel asks these, nothing else.
// ---------------------------------------------------------------------------------------------

// TokenMask.causalKeyEnd, the only place the causal rule is written (DESIGN section 2, aligned
// bottom-right as FlashAttention does): the exclusive end of the keys query row i may read,
// clamped to [0, Nk].
__device__ __forceinline__ int causal_key_end(int i, int Nq, int Nk) {
    const long long end = (long long)i + ((long long)Nk - Nq) + 1;
    return (int)max(0LL, min((long long)Nk, end));
}

// AttentionProblem.keyLength(b): keys j >= key_length are never read.
__device__ __forceinline__ int key_length(const Params& p, int b) {
    return p.keyLens != nullptr ? min(p.Nk, p.keyLens[b]) : p.Nk;
}

// AttentionProblem.queryLength(b): rows i >= query_length read nothing (O = 0, LSE = -inf).
__device__ __forceinline__ int query_length(const Params& p, int b) {
    return p.queryLens != nullptr ? min(p.Nq, p.queryLens[b]) : p.Nq;
}

// TokenMask.rowKeyEnd: exclusive end of the keys valid row i may read (key length and causal).
__device__ __forceinline__ int row_key_end(const Params& p, int b, int i) {
    const int end = key_length(p, b);
    return p.causal ? min(end, causal_key_end(i, p.Nq, p.Nk)) : end;
}

// TokenMask.keyBegin(kb) and keyEnd(kb): a tail key block is partial.
__device__ __forceinline__ int key_begin(const Params& p, int kb) {
    return (int)min((long long)p.Nk, (long long)kb * p.kBlock);
}
__device__ __forceinline__ int key_end(const Params& p, int kb) {
    return (int)min((long long)p.Nk, ((long long)kb + 1) * p.kBlock);
}

// TokenMask.keyEnd(b, i, kb): row i reads [key_begin(kb), this) of an allowed key block.
__device__ __forceinline__ int block_key_end(const Params& p, int b, int i, int kb) {
    return min(key_end(p, kb), row_key_end(p, b, i));
}

// TokenMask.lseIndex: row (b, h, i) in LSE [B, Hq, Nq].
__device__ __forceinline__ long long lse_index(const Params& p, int b, int h, int i) {
    return ((long long)b * p.Hq + h) * p.Nq + i;
}

// ---------------------------------------------------------------------------------------------
// Online softmax: mirrors dev.starling.api.plan.OnlineSoftmax (state m, l, acc of a row).
// ---------------------------------------------------------------------------------------------

// OnlineSoftmax.max: NaN-propagating maximum.
__device__ __forceinline__ float nan_max(float a, float b) {
    return (a != a || b != b) ? CUDART_NAN_F : fmaxf(a, b);
}

// OnlineSoftmax.shift: what a score has subtracted before exp; 0 while the max is -inf.
__device__ __forceinline__ float softmax_shift(float m) {
    return m == -CUDART_INF_F ? 0.f : m;
}

// OnlineSoftmax.rescale: factor moving l and acc from max oldMax onto newMax.
__device__ __forceinline__ float softmax_rescale(float oldMax, float newMax) {
    return oldMax == newMax ? 1.f : expf(oldMax - newMax);
}

// OnlineSoftmax.Rows.finish, the one policy for a row's result: a row that read no key gives
// O = 0, LSE = -inf; a row whose max is not finite (NaN, +inf, or every score -inf) gives NaN;
// otherwise O = acc / l (a non-finite acc feature stays in that feature) and LSE = m + ln l.
__device__ __forceinline__ float finish_out(bool seen, float m, float l, float acc) {
    return !seen ? 0.f : (isfinite(m) ? acc / l : CUDART_NAN_F);
}
__device__ __forceinline__ float finish_lse(bool seen, float m, float l) {
    return !seen ? -CUDART_INF_F : (isfinite(m) ? m + logf(l) : CUDART_NAN_F);
}

// OnlineSoftmax.merge of two normalised partials of one row feature over disjoint key sets:
// LSE = ln(e^lse1 + e^lse2), O = e^(lse1 - LSE) o1 + e^(lse2 - LSE) o2. Two empty partials give
// O = 0, LSE = -inf; a NaN or +inf LSE gives NaN. Returns the merged LSE, writes the feature.
__device__ __forceinline__ float merge_partials(float o1, float lse1, float o2, float lse2, float* o) {
    const float m = nan_max(lse1, lse2);
    if (m == -CUDART_INF_F) {
        *o = 0.f;
        return -CUDART_INF_F;
    }
    if (!isfinite(m)) {
        *o = CUDART_NAN_F;
        return CUDART_NAN_F;
    }
    const float w1 = expf(lse1 - m);
    const float w2 = expf(lse2 - m);
    const float total = w1 + w2;
    *o = (w1 / total) * o1 + (w2 / total) * o2;
    return m + logf(total);
}

// ---------------------------------------------------------------------------------------------
// Where a CTA works and writes.
// ---------------------------------------------------------------------------------------------

// One CTA's work: packed unit blockIdx.x / tilesPerBlock of its head layout, 64-row tile
// blockIdx.x % tilesPerBlock of the unit's query block.
struct Tile {
    int b, h, kvh, qb;
    int begin, end;   // CSR range into keyBlocks
    int slot;         // -1: write the output; >= 0: workspace slot of a split row's part
    int i0, rows;     // first query row and rows of the tile (a tail block is partial)
};

// Fills t; false when the CTA has nothing to do (a padding unit, or a tile past the block's end).
__device__ __forceinline__ bool tile_of(const Params& p, Tile& t) {
    t.b = blockIdx.y / p.Hq;
    t.h = blockIdx.y % p.Hq;
    t.kvh = t.h / p.group;
    const int hl = p.headLayouts == 1 ? 0 : t.h;
    const int* unit = p.units + ((long long)hl * p.unitsPerLayout + blockIdx.x / p.tilesPerBlock) * UNIT_INTS;
    t.qb = unit[0];
    if (t.qb < 0) return false;
    t.begin = unit[1];
    t.end = unit[2];
    t.slot = unit[3];
    const int blockBegin = t.qb * p.qBlock;
    t.i0 = blockBegin + (blockIdx.x % p.tilesPerBlock) * TILE_Q;
    t.rows = min(TILE_Q, min(blockBegin + p.qBlock, p.Nq) - t.i0);
    return t.rows > 0;
}

// Row (b, h, i) of the output.
__device__ __forceinline__ float* output_row(const Params& p, int b, int h, int i) {
    return p.out + b * p.osb + h * p.osh + (long long)i * p.osn;
}

// Row r of query block's workspace slot `slot` for (b, h): index into wsLse, times Dv into wsO.
__device__ __forceinline__ long long workspace_row(const Params& p, int b, int h, int slot, int r) {
    return (((long long)b * p.Hq + h) * p.slotsPerLayout + slot) * p.qBlock + r;
}

// Where the tile writes row i: the output row, or its part's workspace row.
__device__ __forceinline__ float* result_row(const Params& p, const Tile& t, int i) {
    return t.slot < 0 ? output_row(p, t.b, t.h, i)
                      : p.wsO + workspace_row(p, t.b, t.h, t.slot, i - t.qb * p.qBlock) * p.Dv;
}
__device__ __forceinline__ float* result_lse(const Params& p, const Tile& t, int i) {
    if (t.slot >= 0) return p.wsLse + workspace_row(p, t.b, t.h, t.slot, i - t.qb * p.qBlock);
    return p.lse != nullptr ? p.lse + lse_index(p, t.b, t.h, i) : nullptr;
}

// Dynamic shared memory, carved up on the host (SharedLayout.java): buffer X at base + p.smX.
// It is only guaranteed 16-byte aligned and WMMA wants 32: the host launches SMEM_ALIGN bytes of slack.
__device__ __forceinline__ unsigned char* shared_base() {
    extern __shared__ unsigned char smemRaw[];
    return (unsigned char*)(((size_t)smemRaw + (SMEM_ALIGN - 1)) & ~(size_t)(SMEM_ALIGN - 1));
}

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

// ---------------------------------------------------------------------------------------------
// Tensor cores (WMMA, fp32 accumulation): T = __nv_bfloat16 (k-step 16) or float read as tf32
// (k-step 8). MMA_THREADS = 4 warps; warp w owns query rows 16w..16w+15 of the tile. Per key
// tile: S = Q K^T on tensor cores into shared memory, the online softmax per row in fp32 (two
// lanes per row), P stored as T, then O += P V on tensor cores, 16 output columns at a time,
// added into the fp32 output tile in shared memory. D and Dv are zero-padded to multiples of 16
// (exact). Non-finite values of V are replaced by 0 in shared memory and their keys flagged, so
// that a masked key cannot leak 0 * NaN through the product; a row that does read a flagged key
// adds p * v for exactly the non-finite features of that key (read again from global memory),
// so a NaN or inf reaches only that feature of the rows that read it, as the oracle says.
// ---------------------------------------------------------------------------------------------
template <typename T> struct MmaTraits;
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

template <typename T>
__device__ __forceinline__ void mma_body(const Params& p)
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

    const float* qBase = p.q + t.b * p.qsb + t.h * p.qsh;
    for (int idx = tid; idx < TILE_Q * Dpad; idx += blockDim.x) {
        int rr = idx / Dpad, d = idx - rr * Dpad;
        float x = (rr < t.rows && d < D) ? qBase[(long long)(t.i0 + rr) * p.qsn + d] * p.scale : 0.f;
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
    const float* kBase = p.k + t.b * p.ksb + t.kvh * p.ksh;
    const float* vBase = p.v + t.b * p.vsb + t.kvh * p.vsh;

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
                float x = (jj < n && d < D) ? kBase[(long long)(c0 + jj) * p.ksn + d] : 0.f;
                sK[jj * ldq + d] = Tr::from(x);
            }
            for (int idx = tid; idx < tileK * Dvpad; idx += blockDim.x) {
                int jj = idx / Dvpad, d = idx - jj * Dvpad;
                float x = (jj < n && d < Dv) ? vBase[(long long)(c0 + jj) * p.vsn + d] : 0.f;
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
                        const float* vr = vBase + (long long)(c0 + jj) * p.vsn;
                        for (int d = 0; d < Dv; ++d) {
                            const float x = vr[d];
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
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_bf16(const Params p) { mma_body<__nv_bfloat16>(p); }
extern "C" __global__ void __launch_bounds__(MMA_THREADS, 4) starling_tf32(const Params p) { mma_body<float>(p); }

// ---------------------------------------------------------------------------------------------
// Merges the parts of split rows (WorkPlan.packSplits): folds each row's parts in slot order with
// merge_partials, exactly as OnlineSoftmax.merge folds partials, and writes O and LSE. Grid:
// (splitsPerLayout, B * Hq), MERGE_THREADS threads, one warp per row at a time, a lane per feature.
// ---------------------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(MERGE_THREADS) starling_merge(const Params p)
{
    const int b = blockIdx.y / p.Hq;
    const int h = blockIdx.y % p.Hq;
    const int hl = p.headLayouts == 1 ? 0 : h;
    const int* split = p.splits + ((long long)hl * p.splitsPerLayout + blockIdx.x) * SPLIT_INTS;
    const int qb = split[0];
    if (qb < 0) return;   // padding: this head layout has fewer split rows
    const int firstSlot = split[1];
    const int parts = split[2];
    const int i0 = qb * p.qBlock;
    const int rows = min(p.qBlock, p.Nq - i0);
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    for (int rr = warp; rr < rows; rr += blockDim.x >> 5) {
        float* oRow = output_row(p, b, h, i0 + rr);
        const long long first = workspace_row(p, b, h, firstSlot, rr);
        for (int d = lane; d < p.Dv; d += 32) {
            float o = p.wsO[first * p.Dv + d];
            float l = p.wsLse[first];
            for (int c = 1; c < parts; ++c) {
                const long long at = workspace_row(p, b, h, firstSlot + c, rr);
                l = merge_partials(o, l, p.wsO[at * p.Dv + d], p.wsLse[at], &o);
            }
            oRow[d] = o;
        }
        if (p.lse != nullptr && lane == 0) {
            float o = 0.f;
            float l = p.wsLse[first];
            for (int c = 1; c < parts; ++c) {
                l = merge_partials(0.f, l, 0.f, p.wsLse[workspace_row(p, b, h, firstSlot + c, rr)], &o);
            }
            p.lse[lse_index(p, b, h, i0 + rr)] = l;
        }
    }
}
