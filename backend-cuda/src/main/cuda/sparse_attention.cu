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
//
// Two families of attention kernels, chosen on the host (-Dstarling.cuda.kernels, KernelFamily.java):
//   wmma (the default): starling_fp32 on CUDA cores and starling_{tf32,bf16,fp16}[_in16] with WMMA
//        and shared-memory round trips; any head dim up to 128.
//   mma:  starling_mma_{tf32,bf16,fp16}_d{64,128}: mma.sync on register fragments (FlashAttention-2
//        style), cp.async multi-stage K/V tiles, softmax in registers with exp2; D == Dv == 64 or 128.
//        Other shapes fall back to the wmma kernels. bf16/fp16 inputs are 16-bit in global memory:
//        starling_convert_{bf16,fp16} converts float32 inputs first, unless the caller passed 16-bit
//        device pointers (CudaPlan.forward16).
//
// Backward (DESIGN section 4; off unless -Dstarling.cuda.backward=true, not yet run on a GPU):
// starling_bwd_delta, starling_bwd_dq and starling_bwd_dkdv at the end of this file, float32.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
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
#define CONVERT_THREADS 256   // threads of starling_convert_* (LaunchGeometry.CONVERT_THREADS)
#define MMA_BLOCK_M 64        // query rows per CTA of the mma kernels (MmaSpecialisation.BLOCK_M)
#define MMA_ROW_PAD_BYTES 16  // shared rows of Q, K, V are padded by this (SharedLayout.MMA_ROW_PAD_BYTES)
#define MMA_MAX_STAGES 3      // most cp.async stages of K/V tiles (MmaSpecialisation.MAX_STAGES)
#define BWD_THREADS 256       // threads of starling_bwd_*: 4 per query row or per key (BackwardGeometry.THREADS)

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
    // 16-bit (bf16 or fp16) inputs, same strides as q, k, v: read by the 16-bit mma kernels and
    // starling_*_in16; written by starling_convert_* from q, k, v (the plan's copies), or the
    // caller's own 16-bit tensors (then q, k, v are nullptr). nullptr when not used.
    void* q16;
    void* k16;
    void* v16;
    int batch;               // B
    float scaleLog2;         // scale * log2(e): the mma kernels' exp2 argument is score * scaleLog2 - max
    int stages;              // cp.async stages of K/V tiles (mma kernels: 2 or 3; others 1)
    int smStage;             // bytes from one stage of K (or of V) to the next
    // Backward (starling_bwd_*; nullptr and 0 in forward launches). dO, dQ, dK and dV bring their own
    // strides; delta is the plan's workspace of D_i = sum_d dO_id O_id, NaN for a row that contributes nothing.
    const float* dout;       // dO [B, Hq, Nq, Dv]
    float* dq;               // [B, Hq, Nq, D]
    float* dk;               // [B, Hkv, Nk, D]
    float* dv;               // [B, Hkv, Nk, Dv]
    float* delta;            // [B, Hq, Nq]
    const int* colStarts;    // BackwardColumns.packStarts(): headLayouts x (keyBlockCount + 1) indices into colQueryBlocks
    const int* colQueryBlocks;   // BackwardColumns.packQueryBlocks(): every head layout's columns, concatenated
    long long gsb, gsh, gsn;
    long long dqsb, dqsh, dqsn;
    long long dksb, dksh, dksn;
    long long dvsb, dvsh, dvsn;
    int keyBlockCount;       // key blocks of the layout (columns per head layout)
    int keyTilesPerBlock;    // 64-key tiles per key block: ceil(kBlock / 64)
    int bwdRows;             // query rows per chunk of starling_bwd_dkdv (64, or 32 or 16 when 64 do not fit)
    long long causalShift;   // AttentionProblem.causalShift(): row i may read keys j <= i + causalShift
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
static_assert(offsetof(Params, q16) == 336, "Params layout");
static_assert(offsetof(Params, k16) == 344, "Params layout");
static_assert(offsetof(Params, v16) == 352, "Params layout");
static_assert(offsetof(Params, batch) == 360, "Params layout");
static_assert(offsetof(Params, scaleLog2) == 364, "Params layout");
static_assert(offsetof(Params, stages) == 368, "Params layout");
static_assert(offsetof(Params, smStage) == 372, "Params layout");
static_assert(offsetof(Params, dout) == 376, "Params layout");
static_assert(offsetof(Params, dq) == 384, "Params layout");
static_assert(offsetof(Params, dk) == 392, "Params layout");
static_assert(offsetof(Params, dv) == 400, "Params layout");
static_assert(offsetof(Params, delta) == 408, "Params layout");
static_assert(offsetof(Params, colStarts) == 416, "Params layout");
static_assert(offsetof(Params, colQueryBlocks) == 424, "Params layout");
static_assert(offsetof(Params, gsb) == 432, "Params layout");
static_assert(offsetof(Params, gsh) == 440, "Params layout");
static_assert(offsetof(Params, gsn) == 448, "Params layout");
static_assert(offsetof(Params, dqsb) == 456, "Params layout");
static_assert(offsetof(Params, dqsh) == 464, "Params layout");
static_assert(offsetof(Params, dqsn) == 472, "Params layout");
static_assert(offsetof(Params, dksb) == 480, "Params layout");
static_assert(offsetof(Params, dksh) == 488, "Params layout");
static_assert(offsetof(Params, dksn) == 496, "Params layout");
static_assert(offsetof(Params, dvsb) == 504, "Params layout");
static_assert(offsetof(Params, dvsh) == 512, "Params layout");
static_assert(offsetof(Params, dvsn) == 520, "Params layout");
static_assert(offsetof(Params, keyBlockCount) == 528, "Params layout");
static_assert(offsetof(Params, keyTilesPerBlock) == 532, "Params layout");
static_assert(offsetof(Params, bwdRows) == 536, "Params layout");
static_assert(offsetof(Params, causalShift) == 544, "Params layout");
static_assert(sizeof(Params) == 552, "Params layout");

// ---------------------------------------------------------------------------------------------
// Token mask: mirrors dev.starling.api.plan.TokenMask. Every kernel asks these, nothing else.
// ---------------------------------------------------------------------------------------------

// TokenMask.causalKeyEnd, the only place the causal rule is written (DESIGN section 2): the exclusive
// end of the keys query row i may read, clamped to [0, Nk]. The shift is the problem's
// (AttentionProblem.causalShift: Nk - Nq, aligned bottom-right as FlashAttention does, unless a key
// shard moved it).
__device__ __forceinline__ int causal_key_end(int i, long long shift, int Nk) {
    const long long end = (long long)i + shift + 1;
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
    return p.causal ? min(end, causal_key_end(i, p.causalShift, p.Nk)) : end;
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

// The same factor when maxima are kept in log2 units (the mma kernels' exp2 domain).
__device__ __forceinline__ float softmax_rescale2(float oldMax, float newMax) {
    return oldMax == newMax ? 1.f : exp2f(oldMax - newMax);
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

// Fills t for (batch x query head) `bh` and `unitTile` (unit unitTile / tilesPerBlock, 64-row tile
// unitTile % tilesPerBlock of its query block); false when there is nothing to do (a padding unit,
// or a tile past the block's end).
__device__ __forceinline__ bool tile_at(const Params& p, Tile& t, int bh, int unitTile) {
    t.b = bh / p.Hq;
    t.h = bh % p.Hq;
    t.kvh = t.h / p.group;
    const int hl = p.headLayouts == 1 ? 0 : t.h;
    const int* unit = p.units + ((long long)hl * p.unitsPerLayout + unitTile / p.tilesPerBlock) * UNIT_INTS;
    t.qb = unit[0];
    if (t.qb < 0) return false;
    t.begin = unit[1];
    t.end = unit[2];
    t.slot = unit[3];
    const int blockBegin = t.qb * p.qBlock;
    t.i0 = blockBegin + (unitTile % p.tilesPerBlock) * TILE_Q;
    t.rows = min(TILE_Q, min(blockBegin + p.qBlock, p.Nq) - t.i0);
    return t.rows > 0;
}

// The CTA's work on the grid (unitsPerLayout * tilesPerBlock, B * Hq): x the unit tile, y the head.
__device__ __forceinline__ bool tile_of(const Params& p, Tile& t) {
    return tile_at(p, t, blockIdx.y, blockIdx.x);
}

// The same grid read heads-fastest: the CTA the hardware dispatches L-th (blocks go out roughly in
// order of L = y * gridDim.x + x) takes unit tile L / (B * Hq) of head L % (B * Hq), so every
// head's longest units (WorkPlan: longest first) start in the first wave rather than one head's
// after another's, and the grid has no tail of long units. A bijection of the grid onto itself.
__device__ __forceinline__ bool tile_of_heads_fastest(const Params& p, Tile& t) {
    const long long linear = (long long)blockIdx.y * gridDim.x + blockIdx.x;
    return tile_at(p, t, (int)(linear % gridDim.y), (int)(linear / gridDim.y));
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

// ---------------------------------------------------------------------------------------------
// float32 inputs to the 16-bit copies the mma kernels read (round to nearest even): q -> q16,
// k -> k16, v -> v16 for blockIdx.y = 0, 1, 2. The tensors are dense in their layout, so the copy
// is flat and keeps the strides. Grid: (LaunchGeometry.convertGridX, 3), CONVERT_THREADS threads.
// ---------------------------------------------------------------------------------------------
template <typename T>
__device__ __forceinline__ void convert_body(const Params& p)
{
    const long long kvHeads = p.Hq / p.group;
    const float* src;
    T* dst;
    long long count;
    if (blockIdx.y == 0) {
        src = p.q;
        dst = (T*)p.q16;
        count = (long long)p.batch * p.Hq * p.Nq * p.D;
    } else if (blockIdx.y == 1) {
        src = p.k;
        dst = (T*)p.k16;
        count = (long long)p.batch * kvHeads * p.Nk * p.D;
    } else {
        src = p.v;
        dst = (T*)p.v16;
        count = (long long)p.batch * kvHeads * p.Nk * p.Dv;
    }
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long x = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long scalarFrom = 0;
    if ((((size_t)src) & 15) == 0 && (((size_t)dst) & 7) == 0) {   // uniform: four at a time
        const long long quads = count / 4;
        for (long long u = x; u < quads; u += stride) {
            const float4 f = reinterpret_cast<const float4*>(src)[u];
            reinterpret_cast<uint2*>(dst)[u] = make_uint2(MmaOp<T>::pack(f.x, f.y), MmaOp<T>::pack(f.z, f.w));
        }
        scalarFrom = quads * 4;
    }
    for (long long u = scalarFrom + x; u < count; u += stride) dst[u] = MmaOp<T>::from_float(src[u]);
}
extern "C" __global__ void __launch_bounds__(CONVERT_THREADS) starling_convert_bf16(const Params p) { convert_body<__nv_bfloat16>(p); }
extern "C" __global__ void __launch_bounds__(CONVERT_THREADS) starling_convert_fp16(const Params p) { convert_body<__half>(p); }

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
