// The one kernel argument (struct Params) and its pinned layout.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

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
