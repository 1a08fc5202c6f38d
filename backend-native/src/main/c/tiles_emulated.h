/*
 * The tile layer emulated in software, on exactly the data layout of the AMX tiles (16 rows of
 * 64 bytes; bf16 B tiles in pairs along the reduction, "VNNI" order), so the tile algorithm of
 * attention_kernel.h runs unchanged on any x86-64 CPU:
 *   TILE_LOAD  remembers where the operand is (the kernel never changes a loaded operand before
 *              the product that reads it, so reading it there is what tileloadd would have read);
 *   TILE_DP    C[m][n] += Σ_r A[m][r]·B[r][n] (tdpbf16ps for bf16: pairs of products per lane;
 *              a float32 product of 16 × 16 by 16 × 16 for float32);
 *   TILE_STORE writes the float32 accumulator rows.
 * The product is written in plain C, in vdpbf16ps (AVX512-BF16) or in AVX-512F FMA, chosen by the
 * including file: the same algorithm on every path.
 */
#ifndef STARLING_TILES_EMULATED_H
#define STARLING_TILES_EMULATED_H
#include <stdint.h>
#include <string.h>
#if defined(EMULATE_WITH_AVX512BF16) || defined(EMULATE_WITH_AVX512F)
#include <immintrin.h>
#endif

typedef struct {
    const uint8_t *p;
    int64_t stride;
    float acc[16][16] __attribute__((aligned(64)));
} emu_tile;

static inline void tiles_begin(void) {}
static inline void tiles_end(void) {}

static inline float emu_bf16(uint16_t h) {
    union { uint32_t u; float f; } x = { (uint32_t) h << 16 };
    return x.f;
}

static inline void emu_dp(emu_tile *restrict c, const emu_tile *restrict a, const emu_tile *restrict b) {
#if defined(EMULATE_WITH_AVX512BF16)
    __m512bh bv[16];
    for (int r = 0; r < 16; r++) {
        bv[r] = (__m512bh) _mm512_loadu_si512((const void *) (b->p + r * b->stride));
    }
    for (int m = 0; m < 16; m++) {
        const int32_t *ar = (const int32_t *) (a->p + m * a->stride);
        __m512 acc = _mm512_load_ps(c->acc[m]);
        for (int r = 0; r < 16; r++) {
            acc = _mm512_dpbf16_ps(acc, (__m512bh) _mm512_set1_epi32(ar[r]), bv[r]);
        }
        _mm512_store_ps(c->acc[m], acc);
    }
#elif defined(EMULATE_WITH_AVX512F)
    __m512 bv[16];
    for (int r = 0; r < 16; r++) {
        bv[r] = _mm512_loadu_ps((const float *) (b->p + r * b->stride));
    }
    for (int m = 0; m < 16; m++) {
        const float *ar = (const float *) (a->p + m * a->stride);
        __m512 acc = _mm512_load_ps(c->acc[m]);
        for (int r = 0; r < 16; r++) {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(ar[r]), bv[r], acc);
        }
        _mm512_store_ps(c->acc[m], acc);
    }
#elif defined(ELEM_BF16)
    for (int m = 0; m < 16; m++) {
        const uint16_t *ar = (const uint16_t *) (a->p + m * a->stride);
        for (int r = 0; r < 16; r++) {
            float a0 = emu_bf16(ar[2 * r]);
            float a1 = emu_bf16(ar[2 * r + 1]);
            const uint16_t *br = (const uint16_t *) (b->p + r * b->stride);
            for (int n = 0; n < 16; n++) {
                c->acc[m][n] += a0 * emu_bf16(br[2 * n]) + a1 * emu_bf16(br[2 * n + 1]);
            }
        }
    }
#else
    for (int m = 0; m < 16; m++) {
        const float *ar = (const float *) (a->p + m * a->stride);
        for (int r = 0; r < 16; r++) {
            float av = ar[r];
            const float *br = (const float *) (b->p + r * b->stride);
            for (int n = 0; n < 16; n++) {
                c->acc[m][n] += av * br[n];
            }
        }
    }
#endif
}

static inline void emu_store(const emu_tile *c, uint8_t *p, int64_t stride) {
    for (int m = 0; m < 16; m++) {
        memcpy(p + m * stride, c->acc[m], 64);
    }
}

#define TILES_STATE emu_tile tl_[8]
#define TILE_ZERO(c) memset(tl_[c].acc, 0, sizeof tl_[c].acc)
#define TILE_LOAD(t, ptr, bytes) (tl_[t].p = (const uint8_t *) (ptr), tl_[t].stride = (bytes))
#define TILE_DP(c, a, b) emu_dp(&tl_[c], &tl_[a], &tl_[b])
#define TILE_STORE(c, ptr, bytes) emu_store(&tl_[c], (uint8_t *) (ptr), (bytes))
#endif
