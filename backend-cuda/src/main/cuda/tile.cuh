// Unit and tile to thread block mapping: where a CTA works and writes.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

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
