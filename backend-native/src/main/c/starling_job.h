/*
 * One forward call of the native backend, as the dispatcher hands it to a kernel path.
 *
 * Every check (shapes, aliasing, capabilities, overflow of sizes) has been done in Java before this
 * struct is filled (NativePlan); the kernels only do arithmetic on what is described here. All
 * strides and offsets are in floats; packed buffers are 64-byte aligned.
 */
#ifndef STARLING_JOB_H
#define STARLING_JOB_H

#include <stdatomic.h>
#include <stdint.h>

/* Keys per packing item: a multiple of 32, so no packed key group straddles two items. */
#define STARLING_PACK_KEYS 256
/* Status codes returned to Java (NativeKernels). */
#define STARLING_OK 0
#define STARLING_NONFINITE 1
#define STARLING_NO_MEMORY (-1)
#define STARLING_NO_THREAD (-2)
#define STARLING_NO_TILES (-3)
#define STARLING_BAD_PATH (-4)

typedef struct starling_job {
    /* Problem: Q [B, Hq, Nq, D], K [B, Hkv, Nk, D], V [B, Hkv, Nk, Dv], O [B, Hq, Nq, Dv]. */
    int batch, qheads, kvheads, group, nq, nk, d, dv, qblock, kblock;
    /* Padded sizes of the packed operands: D to the tile's reduction width, Dv to 64, Nk to 32 plus 32. */
    int dp, dvp, nkp;
    /* Query rows per query block (min(qblock, Nq)), merge slots per head layout. */
    int qrows, slots_per_layout;
    /* s · log2(e): scores are kept in base-2 units, exp2 is the one exponential. */
    float scale2;
    const float *q, *k, *v;
    float *out, *lse;                 /* lse may be NULL */
    int64_t qs[3], ks[3], vs[3], os[3];  /* strides of (b, h, n) per tensor */
    /* Work items (bh, packed unit index) in claiming order; units (qb, begin, end, slot). */
    const int32_t *items;
    int nitems;
    const int32_t *units, *key_blocks;
    /* Exclusive end of the keys row (b, i) may read by lengths and causal (TokenMask.rowKeyEnd); 0 for a padded row. */
    const int32_t *row_key_end;
    /* Split rows: normalised partial O rows and their LSE, at ((bh·slots + slot)·qrows + row). */
    float *part_out, *part_lse;
    /* Packed K and V per (b, kv head). */
    uint8_t *kpack, *vpack;
    int64_t khead_bytes, vhead_bytes;
    int pack_items;
    /* Claimed by the workers; nonfinite: an input holds NaN or ±∞ (Java then computes the call exactly). */
    atomic_int next_pack, next_unit, nonfinite, failed;
} starling_job;

/*
 * A kernel path. A call runs two rounds of workers (the calling thread and its helpers): `pack`
 * converts K and V into the path's tile layout, then `units` computes the work items. Each
 * worker claims items from the job's counters until none is left, so any number of workers
 * (one included) completes the call. Both return STARLING_OK or a negative status.
 */
typedef struct starling_path {
    const char *name;
    int elem_bytes;     /* 2 (bf16) or 4 (float32) */
    int reduce;         /* elements of the reduction per tile row: 32 (bf16) or 16 (float32) */
    int (*pack)(starling_job *job);
    int (*units)(starling_job *job);
} starling_path;

extern const starling_path starling_path_portable_fp32;
extern const starling_path starling_path_avx2_fp32;
extern const starling_path starling_path_avx512_fp32;
extern const starling_path starling_path_tiles_bf16;
extern const starling_path starling_path_avx512bf16;
extern const starling_path starling_path_amx;

#endif
