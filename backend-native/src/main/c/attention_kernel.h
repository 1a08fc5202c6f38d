/*
 * The fused block-sparse attention kernel, written once against the tile layer (TILE_ZERO,
 * TILE_LOAD, TILE_LOAD_ACC, TILE_DP, TILE_STORE on eight tiles of 16 rows × 64 bytes). Each path
 * file defines the element type (ELEM_BF16 or float32), includes a tile layer (tiles_amx.h or
 * tiles_emulated.h) and then this file with PATH_ID set; it is compiled with that path's
 * instruction-set flags. So the AMX algorithm is the algorithm of every path; AVX-512 builds do
 * the softmax, the packing and the transposes in 512-bit vectors, the others in plain C.
 *
 * The products are computed transposed, so that a query is a vector lane everywhere outside the
 * tiles and the softmax needs no horizontal reduction:
 *   Sᵀ = K·Qᵀ   [keys × 16 queries]: A = K rows as they are (packed once per call, bf16 or
 *               float32), B = Qᵀ in pairs along the features ("VNNI"), built per 16 query rows;
 *               in bf16 as Kh·Qhᵀ + Kl·Qhᵀ + Kh·Qlᵀ, each operand split into a bf16 high part and a
 *               bf16 remainder, so the scores carry about 16 bits (rounding Q and K once errs by
 *               2^-9 of s·Σ|q·k|, which a sharp softmax turns into errors past the bf16 tolerance
 *               row: the kit's custom-scale and D = 256 cases fail by 1-25% without it);
 *   Oᵀ += Vᵀ·Pᵀ [Dv × 16 queries]: A = Vᵀ (transposed once per call in the packing), B = Pᵀ in
 *               pairs along the keys, written by the softmax.
 * Per work item (a query block against a range of its allowed key blocks, WorkPlan), per tile of
 * 16 query rows, per step of 64 keys:
 *   online softmax per query lane   base-2 scores t = S·s·log2 e (the scale folded into the
 *                                   exponent), keys outside the row's TokenMask range weigh
 *                                   exactly 0; the reference maximum m moves only when the
 *                                   step's maximum exceeds it by more than THRESHOLD (then
 *                                   α = 2^(m − m'), l and Oᵀ are rescaled by α), so P = 2^(t − m)
 *                                   <= 2^THRESHOLD and most steps rescale nothing;
 *                                   l += Σ P;  2^x is a polynomial on the FMA units.
 *   finish: O = Oᵀ / l transposed back and LSE = m·ln 2 + ln l, or O = 0 and LSE = −∞ for a row
 *   that read no key; a split row's part writes its normalised partial for the Java merge
 *   (OnlineSoftmax.merge).
 * Only finite inputs reach it: the packing and the Q conversion report NaN or ±∞ and the call
 * is then computed exactly in Java (NativePlan), so a masked key is a zero weight and nothing
 * else.
 */
#include "starling_job.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#ifdef ELEM_BF16
typedef uint16_t elem;
#define PAIR 2
/*
 * Scores from split operands: Q converted and K packed twice, high part then remainder
 * (splitting Q alone, KSPLIT 1, halves the error and fails the kit's D = 256 cases by ~2%).
 */
#define SPLIT 2
#define KSPLIT 2
#else
typedef float elem;
#define PAIR 1
#define SPLIT 1
#define KSPLIT 1
#endif
/* Reduction elements per 64-byte tile row. */
#define KT (16 * PAIR)
#define ES ((int) sizeof(elem))
/* Keys per softmax step; bytes of one tile. */
#define STEP 64
#define TILE 1024
/* Base-2 units the row maximum may grow by before l and O are rescaled (P <= 2^THRESHOLD). */
#define THRESHOLD 8.0f
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name##_, PATH_ID)

#define LN2 0.6931471805599453

static inline int FN(is_finite_bits)(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (u & 0x7f800000u) != 0x7f800000u;
}

static inline elem FN(to_elem)(float x) {
#ifdef ELEM_BF16
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even; inputs are finite */
    return (uint16_t) (u >> 16);
#else
    return x;
#endif
}

/* x − to_elem(x) as an element (the remainder of a split operand; 0 in float32). */
static inline elem FN(remainder)(float x, elem hi) {
#ifdef ELEM_BF16
    uint32_t u = (uint32_t) hi << 16;
    float h;
    memcpy(&h, &u, 4);
    return FN(to_elem)(x - h);
#else
    (void) x;
    (void) hi;
    return 0.0f;
#endif
}

/* 2^x in plain C for x <= THRESHOLD (x below −127 gives about 2^-127); relative error about 2e-7. */
static inline float FN(exp2s)(float x) {
    if (x < -127.0f) {
        x = -127.0f;
    }
    float k = (x + 12582912.0f) - 12582912.0f; /* nearest integer: 1.5·2^23 */
    float f = x - k;
    float p = 0.001327645848505199f;
    p = p * f + 0.009675541892647743f;
    p = p * f + 0.05550713464617729f;
    p = p * f + 0.24022120237350464f;
    p = p * f + 0.6931469440460205f;
    p = p * f + 1.0000001192092896f;
    uint32_t bits = (uint32_t) ((int) k + 127) << 23;
    float two;
    memcpy(&two, &bits, 4);
    return p * two;
}

#ifdef __AVX512F__
/* Lanes holding NaN or ±∞. */
static inline __mmask16 FN(bad16)(__m512 x) {
    __m512i e = _mm512_set1_epi32(0x7f800000);
    return _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(x), e), e);
}

/* Transposes 16 × 16 32-bit elements in place: r[i] lane j becomes r[j] lane i. */
static inline void FN(transpose16)(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
    }
}

/*
 * 2^x per lane (x <= THRESHOLD; very negative x gives 0). bf16: a cubic on [−1/2, 1/2], relative
 * error 7.5e-5 (P is rounded to bf16 afterwards, 2^-9); float32: a quintic, 2.3e-7.
 */
static inline __m512 FN(exp2v)(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f); /* 1.5·2^23: adding it rounds to an integer */
    __m512 k = _mm512_sub_ps(_mm512_add_ps(x, magic), magic);
    __m512 f = _mm512_sub_ps(x, k);
#ifdef ELEM_BF16
    __m512 p = _mm512_set1_ps(0.05517154932022095f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2426111400127411f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6932610273361206f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999280571937561f));
#else
    __m512 p = _mm512_set1_ps(0.001327645848505199f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.009675541892647743f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.05550713464617729f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24022120237350464f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931469440460205f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0000001192092896f));
#endif
    return _mm512_scalef_ps(p, k);
}

#ifdef ELEM_BF16
/* 16 floats rounded to bf16 and back (nearest even; finite inputs). */
static inline __m512 FN(round_bf16)(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    u = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    return _mm512_castsi512_ps(_mm512_and_si512(u, _mm512_set1_epi32((int) 0xffff0000u)));
}
#endif
#endif

/*
 * Packs keys [j0, j1) of one (b, kv head) of K and V (zeros past Nk, D and Dv), and says whether
 * one of the values read is not finite.
 *   K: [Nkp][Dp] elements, key rows as they are (an A tile is 16 key rows at stride Dp);
 *      with SPLIT the remainders follow at khead_bytes / 2.
 *   V: Vᵀ in groups of 32 keys, [Nkp / 32][Dvp][32] elements (an A tile is 16 feature rows of KT
 *      keys of one group at stride 32 elements), so the values of a step are 2 contiguous groups.
 * j0 and j1 are multiples of 16.
 */
static int FN(pack_range)(const starling_job *job, int head, int j0, int j1) {
    int b = head / job->kvheads;
    int kvh = head % job->kvheads;
    int dp = job->dp, dvp = job->dvp;
    elem *kdst = (elem *) (job->kpack + (int64_t) head * job->khead_bytes);
    int64_t klo = job->khead_bytes / KSPLIT / ES; /* elements from a high part to its remainder */
    elem *vdst = (elem *) (job->vpack + (int64_t) head * job->vhead_bytes);
    const float *kh = job->k + b * job->ks[0] + kvh * job->ks[1];
    const float *vh = job->v + b * job->vs[0] + kvh * job->vs[1];
    int bad = 0;
    (void) klo;
#ifdef __AVX512F__
    for (int j = j0; j < j1; j++) {
        const float *ks = j < job->nk ? kh + j * job->ks[2] : NULL;
        elem *row = kdst + (int64_t) j * dp;
        for (int d = 0; d < dp; d += KT) {
            __mmask16 m0 = ks == NULL || d >= job->d ? 0 : job->d - d >= 16 ? 0xffff : (__mmask16) ((1u << (job->d - d)) - 1);
            __m512 x0 = _mm512_maskz_loadu_ps(m0, ks == NULL ? kh : ks + d);
            bad |= FN(bad16)(x0) != 0;
#ifdef ELEM_BF16
            int d1 = d + 16;
            __mmask16 m1 = ks == NULL || d1 >= job->d ? 0 : job->d - d1 >= 16 ? 0xffff : (__mmask16) ((1u << (job->d - d1)) - 1);
            __m512 x1 = _mm512_maskz_loadu_ps(m1, ks == NULL ? kh : ks + d1);
            bad |= FN(bad16)(x1) != 0;
            __m512 h0 = FN(round_bf16)(x0), h1 = FN(round_bf16)(x1);
            _mm512_storeu_si512((void *) (row + d), (__m512i) _mm512_cvtne2ps_pbh(h1, h0));
#if KSPLIT > 1
            _mm512_storeu_si512((void *) (row + klo + d),
                                (__m512i) _mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0)));
#endif
#else
            _mm512_storeu_ps(row + d, x0);
#endif
        }
    }
    for (int jg = j0; jg < j1; jg += 16) {
        for (int f = 0; f < dvp; f += 16) {
            __mmask16 mf = f >= job->dv ? 0 : job->dv - f >= 16 ? 0xffff : (__mmask16) ((1u << (job->dv - f)) - 1);
            __m512 r[16];
            for (int x = 0; x < 16; x++) {
                int j = jg + x;
                r[x] = _mm512_maskz_loadu_ps(j < job->nk ? mf : 0, j < job->nk ? vh + j * job->vs[2] + f : vh);
                bad |= FN(bad16)(r[x]) != 0;
            }
            FN(transpose16)(r);
            for (int y = 0; y < 16; y++) {
                elem *dst = vdst + ((int64_t) (jg / 32) * dvp + f + y) * 32 + jg % 32;
#ifdef ELEM_BF16
                _mm256_storeu_si256((__m256i *) dst, (__m256i) _mm512_cvtneps_pbh(r[y]));
#else
                _mm512_storeu_ps(dst, r[y]);
#endif
            }
        }
    }
#else
    for (int j = j0; j < j1; j++) {
        const float *ks = j < job->nk ? kh + j * job->ks[2] : NULL;
        const float *vs = j < job->nk ? vh + j * job->vs[2] : NULL;
        elem *row = kdst + (int64_t) j * dp;
        for (int d = 0; d < dp; d++) {
            float x = ks != NULL && d < job->d ? ks[d] : 0.0f;
            bad |= !FN(is_finite_bits)(x);
            row[d] = FN(to_elem)(x);
            if (KSPLIT > 1) {
                row[d + klo] = FN(remainder)(x, row[d]);
            }
        }
        for (int n = 0; n < dvp; n++) {
            float x = vs != NULL && n < job->dv ? vs[n] : 0.0f;
            bad |= !FN(is_finite_bits)(x);
            vdst[((int64_t) (j / 32) * dvp + n) * 32 + j % 32] = FN(to_elem)(x);
        }
    }
#endif
    return bad;
}

static int FN(pack)(starling_job *job) {
    int per_head = (job->nkp + STARLING_PACK_KEYS - 1) / STARLING_PACK_KEYS;
    for (int it = atomic_fetch_add(&job->next_pack, 1); it < job->pack_items; it = atomic_fetch_add(&job->next_pack, 1)) {
        int head = it / per_head;
        int j0 = (it % per_head) * STARLING_PACK_KEYS;
        int j1 = j0 + STARLING_PACK_KEYS < job->nkp ? j0 + STARLING_PACK_KEYS : job->nkp;
        if (FN(pack_range)(job, head, j0, j1)) {
            atomic_store(&job->nonfinite, 1);
        }
    }
    return STARLING_OK;
}

/* Tiles of 16 query rows that go through a key step together. */
#define RT 4

/* One tile of 16 query rows of an item and its running softmax (buffers 64-byte aligned). */
typedef struct {
    elem *qt;    /* Qᵀ B tiles: [SPLIT][Dp / KT][16 rows][16 queries · PAIR] */
    float *ot;   /* Oᵀ: [Dvp][16 queries] */
    float *m;    /* [16] reference maxima (base 2) */
    float *l;    /* [16] sums */
    int32_t *hi; /* [16] end of the allowed keys of each lane in the step, relative to its first key */
    int rke[16]; /* end of the keys each row may read (TokenMask.rowKeyEnd; Nkp past the rows) */
    int r0, rows, kmax;
} FN(rtile);

/* What one worker owns while it runs items (64-byte aligned). */
typedef struct {
    float *s;    /* Sᵀ: [64 keys][16 queries] */
    elem *p;     /* Pᵀ B tiles: [64 / KT][16 rows][16 queries · PAIR] */
    float *tmp;  /* [Dp / 16][16][16] 32-bit staging for the Qᵀ transposes */
    FN(rtile) rt[RT];
    void *block;
} FN(scratch);

/*
 * Builds the Qᵀ tiles of rows [r0, r0 + rows) of (b, h) (zeros past them), negated when the scale
 * is negative (exact), so that the softmax runs with |s| and its maxima are maxima of the scores;
 * says whether one is not finite.
 */
static int FN(load_queries)(const starling_job *job, float *tmp, elem *qt, int b, int h, int r0, int rows) {
    int bad = 0;
    int chunks = job->dp / KT;
    const float *qh = job->q + b * job->qs[0] + h * job->qs[1];
#ifdef __AVX512F__
    /* Per query: its dwords (PAIR elements) per chunk into tmp[c][q], then a transpose per chunk. */
    __m512i flip = _mm512_set1_epi32(job->scale2 < 0 ? (int) 0x80000000u : 0);
    for (int s = 0; s < SPLIT; s++) {
        for (int q = 0; q < 16; q++) {
            const float *src = q < rows ? qh + (int64_t) (r0 + q) * job->qs[2] : NULL;
            for (int c = 0; c < chunks; c++) {
                int d = c * KT;
                __mmask16 m0 = src == NULL || d >= job->d ? 0 : job->d - d >= 16 ? 0xffff : (__mmask16) ((1u << (job->d - d)) - 1);
                __m512 x0 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(m0, src == NULL ? qh : src + d)), flip));
                __m512 out;
#ifdef ELEM_BF16
                int d1 = d + 16;
                __mmask16 m1 = src == NULL || d1 >= job->d ? 0 : job->d - d1 >= 16 ? 0xffff : (__mmask16) ((1u << (job->d - d1)) - 1);
                __m512 x1 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(m1, src == NULL ? qh : src + d1)), flip));
                bad |= (FN(bad16)(x0) | FN(bad16)(x1)) != 0;
                __m512 h0 = FN(round_bf16)(x0), h1 = FN(round_bf16)(x1);
                out = s == 0 ? (__m512) _mm512_cvtne2ps_pbh(h1, h0)
                             : (__m512) _mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0));
#else
                bad |= FN(bad16)(x0) != 0;
                out = x0;
#endif
                _mm512_store_ps(tmp + (c * 16 + q) * 16, out);
            }
        }
        for (int c = 0; c < chunks; c++) {
            __m512 r[16];
            for (int q = 0; q < 16; q++) {
                r[q] = _mm512_load_ps(tmp + (c * 16 + q) * 16);
            }
            FN(transpose16)(r);
            float *dst = (float *) (qt + (int64_t) (s * chunks + c) * 16 * KT);
            for (int x = 0; x < 16; x++) {
                _mm512_store_ps(dst + x * 16, r[x]);
            }
        }
    }
#else
    (void) tmp;
    for (int q = 0; q < 16; q++) {
        const float *src = q < rows ? qh + (int64_t) (r0 + q) * job->qs[2] : NULL;
        for (int d = 0; d < job->dp; d++) {
            float x = src != NULL && d < job->d ? (job->scale2 < 0 ? -src[d] : src[d]) : 0.0f;
            bad |= !FN(is_finite_bits)(x);
            int64_t at = (int64_t) (d / KT) * 16 * KT + ((d % KT) / PAIR) * 16 * PAIR + q * PAIR + d % PAIR;
            elem hi = FN(to_elem)(x);
            qt[at] = hi;
            if (SPLIT > 1) {
                qt[at + (int64_t) chunks * 16 * KT] = FN(remainder)(x, hi);
            }
        }
    }
#endif
    return bad;
}

/*
 * The online softmax of one step for one tile of 16 query rows: scores s [64 keys][16 lanes]
 * (float32, unscaled, the sign of the scale already in Q), lane q allowed keys [lo, hi[q]) of the
 * step (full: lo = 0 and every lane all 64). Updates m, l and, when a maximum moves past
 * THRESHOLD, rescales ot; writes the Pᵀ tiles to p.
 */
static void FN(softmax)(const starling_job *job, const float *s, elem *p, FN(rtile) *rt, int lo, int full) {
    int dvp = job->dvp;
    float *ot = rt->ot;
#ifdef __AVX512F__
    __m512 sc = _mm512_set1_ps(fabsf(job->scale2));
    __m512 m = _mm512_load_ps(rt->m);
    __m512i hi = _mm512_load_si512((const void *) rt->hi);
    __m512 neg = _mm512_set1_ps(-INFINITY);
    __m512 mx0 = neg, mx1 = neg, mx2 = neg, mx3 = neg;
    if (full) {
        for (int k = 0; k < STEP; k += 4) {
            mx0 = _mm512_max_ps(mx0, _mm512_load_ps(s + k * 16));
            mx1 = _mm512_max_ps(mx1, _mm512_load_ps(s + k * 16 + 16));
            mx2 = _mm512_max_ps(mx2, _mm512_load_ps(s + k * 16 + 32));
            mx3 = _mm512_max_ps(mx3, _mm512_load_ps(s + k * 16 + 48));
        }
    } else {
        for (int k = lo; k < STEP; k++) {
            __mmask16 in = _mm512_cmpgt_epi32_mask(hi, _mm512_set1_epi32(k));
            mx0 = _mm512_mask_max_ps(mx0, in, mx0, _mm512_load_ps(s + k * 16));
        }
    }
    __m512 t = _mm512_mul_ps(_mm512_max_ps(_mm512_max_ps(mx0, mx1), _mm512_max_ps(mx2, mx3)), sc);
    __mmask16 move = _mm512_cmp_ps_mask(t, _mm512_add_ps(m, _mm512_set1_ps(THRESHOLD)), _CMP_GT_OQ);
    __m512 l = _mm512_load_ps(rt->l);
    if (move) {
        __m512 mn = _mm512_mask_mov_ps(m, move, t);
        __mmask16 had = _mm512_cmp_ps_mask(m, neg, _CMP_NEQ_OQ);
        __m512 alpha = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), move,
                                          _mm512_maskz_mov_ps(had, FN(exp2v)(_mm512_sub_ps(m, mn))));
        l = _mm512_mul_ps(l, alpha);
        for (int f = 0; f < dvp; f++) {
            _mm512_store_ps(ot + f * 16, _mm512_mul_ps(_mm512_load_ps(ot + f * 16), alpha));
        }
        m = mn;
        _mm512_store_ps(rt->m, m);
    }
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
#ifdef ELEM_BF16
    const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                           5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
#endif
    for (int k = 0; k < STEP; k += 2) {
        __m512 p0 = FN(exp2v)(_mm512_fmsub_ps(_mm512_load_ps(s + k * 16), sc, m));
        __m512 p1 = FN(exp2v)(_mm512_fmsub_ps(_mm512_load_ps(s + k * 16 + 16), sc, m));
        if (!full) {
            p0 = _mm512_maskz_mov_ps(k >= lo ? _mm512_cmpgt_epi32_mask(hi, _mm512_set1_epi32(k)) : 0, p0);
            p1 = _mm512_maskz_mov_ps(k + 1 >= lo ? _mm512_cmpgt_epi32_mask(hi, _mm512_set1_epi32(k + 1)) : 0, p1);
        }
        sum0 = _mm512_add_ps(sum0, p0);
        sum1 = _mm512_add_ps(sum1, p1);
#ifdef ELEM_BF16
        /* Keys k and k + 1 of each lane side by side: row k / 2 of a Pᵀ B tile. */
        __m512i both = (__m512i) _mm512_cvtne2ps_pbh(p1, p0);
        _mm512_store_si512((void *) (p + k * 16), _mm512_permutexvar_epi16(pairs, both));
#else
        _mm512_store_ps(p + k * 16, p0);
        _mm512_store_ps(p + k * 16 + 16, p1);
#endif
    }
    _mm512_store_ps(rt->l, _mm512_add_ps(l, _mm512_add_ps(sum0, sum1)));
#else
    (void) full;
    float scale = fabsf(job->scale2);
    for (int q = 0; q < 16; q++) {
        float mx = -INFINITY;
        for (int k = lo; k < rt->hi[q] && k < STEP; k++) {
            mx = s[k * 16 + q] > mx ? s[k * 16 + q] : mx;
        }
        float t = mx * scale;
        if (t > rt->m[q] + THRESHOLD) {
            float alpha = rt->m[q] == -INFINITY ? 0.0f : FN(exp2s)(rt->m[q] - t);
            rt->l[q] *= alpha;
            for (int f = 0; f < dvp; f++) {
                ot[f * 16 + q] *= alpha;
            }
            rt->m[q] = t;
        }
        float sum = 0.0f;
        for (int k = 0; k < STEP; k++) {
            float e = k >= lo && k < rt->hi[q] ? FN(exp2s)(s[k * 16 + q] * scale - rt->m[q]) : 0.0f;
            sum += e;
            p[(k / PAIR) * 16 * PAIR + q * PAIR + k % PAIR] = FN(to_elem)(e);
        }
        rt->l[q] += sum;
    }
#endif
}

/* Writes O = Oᵀ / l and the LSE of the rows of one tile of the item (see the file comment). */
static void FN(finish)(const starling_job *job, const FN(rtile) *rt, int bh, int slot, int i0) {
    int b = bh / job->qheads;
    int h = bh % job->qheads;
    int rows = rt->rows;
    float inv[16] __attribute__((aligned(64)));
    float *orow[16];
    for (int q = 0; q < 16; q++) {
        inv[q] = 0.0f;
        orow[q] = NULL;
        if (q >= rows) {
            continue;
        }
        int i = rt->r0 + q;
        float *lse;
        if (slot < 0) {
            orow[q] = job->out + b * job->os[0] + h * job->os[1] + (int64_t) i * job->os[2];
            lse = job->lse == NULL ? NULL : job->lse + ((int64_t) b * job->qheads + h) * job->nq + i;
        } else {
            int64_t at = ((int64_t) bh * job->slots_per_layout + slot) * job->qrows + (i - i0);
            orow[q] = job->part_out + at * job->dv;
            lse = job->part_lse + at;
        }
        if (rt->m[q] != -INFINITY) {
            inv[q] = (float) (1.0 / rt->l[q]);
        }
        if (lse != NULL) {
            *lse = rt->m[q] == -INFINITY ? -INFINITY : (float) (rt->m[q] * LN2 + log((double) rt->l[q]));
        }
    }
#ifdef __AVX512F__
    __m512 vi = _mm512_load_ps(inv);
    for (int f = 0; f < job->dv; f += 16) {
        __m512 r[16];
        for (int x = 0; x < 16; x++) {
            r[x] = _mm512_mul_ps(_mm512_load_ps(rt->ot + (f + x) * 16), vi);
        }
        FN(transpose16)(r);
        __mmask16 mf = job->dv - f >= 16 ? 0xffff : (__mmask16) ((1u << (job->dv - f)) - 1);
        for (int q = 0; q < rows; q++) {
            _mm512_mask_storeu_ps(orow[q] + f, mf, r[q]);
        }
    }
#else
    for (int q = 0; q < rows; q++) {
        for (int f = 0; f < job->dv; f++) {
            orow[q][f] = rt->ot[f * 16 + q] * inv[q];
        }
    }
#endif
}

/* One work item: returns nonzero when a query is not finite (the call is then recomputed). */
static int FN(unit)(starling_job *job, FN(scratch) *w, int item) {
    TILES_STATE;
    int bh = job->items[2 * item];
    const int32_t *unit = job->units + 4 * (int64_t) job->items[2 * item + 1];
    int b = bh / job->qheads;
    int h = bh % job->qheads;
    int kvh = h / job->group;
    int qb = unit[0], begin = unit[1], end = unit[2], slot = unit[3];
    int i0 = qb * job->qblock;
    int i1 = i0 + job->qblock < job->nq ? i0 + job->qblock : job->nq;
    int chunks = job->dp / KT;
    int dp = job->dp, dvp = job->dvp;
    const elem *kbase = (const elem *) (job->kpack + (int64_t) (b * job->kvheads + kvh) * job->khead_bytes);
    const elem *kl = kbase + job->khead_bytes / KSPLIT / ES;
    const elem *vbase = (const elem *) (job->vpack + (int64_t) (b * job->kvheads + kvh) * job->vhead_bytes);
    (void) kl;
    float *s = w->s;
    elem *p = w->p;
    /* Up to RT tiles of 16 query rows go through each key step together, so K and V are read once. */
    for (int g = i0; g < i1; g += 16 * RT) {
        int nrt = 0;
        int kmax = 0;
        for (int r0 = g; r0 < i1 && nrt < RT; r0 += 16, nrt++) {
            FN(rtile) *rt = &w->rt[nrt];
            rt->r0 = r0;
            rt->rows = i1 - r0 < 16 ? i1 - r0 : 16;
            if (FN(load_queries)(job, w->tmp, rt->qt, b, h, r0, rt->rows)) {
                return 1;
            }
            rt->kmax = 0;
            for (int q = 0; q < 16; q++) {
                /* Lanes past the rows compute on zero queries and are never written. */
                rt->rke[q] = q < rt->rows ? job->row_key_end[(int64_t) b * job->nq + r0 + q] : job->nkp;
                rt->kmax = q < rt->rows && rt->rke[q] > rt->kmax ? rt->rke[q] : rt->kmax;
                rt->m[q] = -INFINITY;
                rt->l[q] = 0.0f;
            }
            kmax = rt->kmax > kmax ? rt->kmax : kmax;
            memset(rt->ot, 0, sizeof(float) * 16 * dvp);
            /* The output rows are written at the end: their lines are asked for now. */
            for (int q = 0; q < rt->rows && slot < 0; q++) {
                const float *o = job->out + b * job->os[0] + h * job->os[1] + (int64_t) (r0 + q) * job->os[2];
                for (int f = 0; f < job->dv; f += 16) {
                    __builtin_prefetch(o + f, 1, 3);
                }
                __builtin_prefetch(o + job->dv - 1, 1, 3);
            }
        }
        for (int pos = begin; pos < end; pos++) {
            int kb = job->key_blocks[pos];
            int j0 = kb * job->kblock;
            int j1 = j0 + job->kblock < job->nk ? j0 + job->kblock : job->nk;
            int jmax = j1 < kmax ? j1 : kmax;
            for (int g0 = j0 & ~31; g0 < jmax; g0 += STEP) {
                int lo = j0 > g0 ? j0 - g0 : 0;
                const elem *kg = kbase + (int64_t) g0 * dp;
                const elem *vg = vbase + (int64_t) (g0 / 32) * dvp * 32;
                for (int x = 0; x < nrt; x++) {
                    FN(rtile) *rt = &w->rt[x];
                    if (g0 >= rt->kmax) {
                        continue;
                    }
                    int full = lo == 0;
                    for (int q = 0; q < 16; q++) {
                        int e = (j1 < rt->rke[q] ? j1 : rt->rke[q]) - g0;
                        rt->hi[q] = e;
                        full &= e >= STEP;
                    }
                    const elem *qh = rt->qt;
                    const elem *ql = rt->qt + (int64_t) chunks * 16 * KT;
                    (void) ql;
                    /* Sᵀ = K·Qᵀ for keys [g0, g0 + 64): C tiles 0-3 (16 keys each), B 4 (and 5: Ql), A 6/7. */
                    TILE_ZERO(0);
                    TILE_ZERO(1);
                    TILE_ZERO(2);
                    TILE_ZERO(3);
                    for (int c = 0; c < chunks; c++) {
                        TILE_LOAD(4, qh + c * 16 * KT, 64);
#if SPLIT > 1
                        TILE_LOAD(5, ql + c * 16 * KT, 64);
#if KSPLIT > 1
#define S_TILE(t, a)                                                                                               \
    TILE_LOAD(6, kg + (int64_t) (16 * (t)) * dp + c * KT, (int64_t) dp * ES);                                      \
    TILE_LOAD(7, kl + (int64_t) (g0 + 16 * (t)) * dp + c * KT, (int64_t) dp * ES);                                 \
    TILE_DP(t, 6, 4);                                                                                              \
    TILE_DP(t, 6, 5);                                                                                              \
    TILE_DP(t, 7, 4);
#else
#define S_TILE(t, a)                                                                                               \
    TILE_LOAD(a, kg + (int64_t) (16 * (t)) * dp + c * KT, (int64_t) dp * ES);                                      \
    TILE_DP(t, a, 4);                                                                                              \
    TILE_DP(t, a, 5);
#endif
#else
#define S_TILE(t, a)                                                                                               \
    TILE_LOAD(a, kg + (int64_t) (16 * (t)) * dp + c * KT, (int64_t) dp * ES);                                      \
    TILE_DP(t, a, 4);
#endif
                        S_TILE(0, 6)
                        S_TILE(1, 7)
                        S_TILE(2, 6)
                        S_TILE(3, 7)
#undef S_TILE
                    }
                    TILE_STORE(0, s, 64);
                    TILE_STORE(1, s + 256, 64);
                    TILE_STORE(2, s + 512, 64);
                    TILE_STORE(3, s + 768, 64);
                    FN(softmax)(job, s, p, rt, lo, full);
                    /* Oᵀ += Vᵀ·Pᵀ, 64 value features at a time: C tiles 0-3, B 4/5 (Pᵀ), A 6/7 (Vᵀ). */
                    for (int dg = 0; dg < dvp; dg += 64) {
                        float *o = rt->ot + dg * 16;
                        TILE_LOAD_ACC(0, o, 64);
                        TILE_LOAD_ACC(1, o + 256, 64);
                        TILE_LOAD_ACC(2, o + 512, 64);
                        TILE_LOAD_ACC(3, o + 768, 64);
                        /* Keys g0 + kc·KT.. of features dg..: group key / 32, row f, column key % 32. */
#define PV_CHUNK(kc, bt)                                                                                           \
    {                                                                                                              \
        const elem *vt = vg + ((int64_t) ((kc) * KT / 32) * dvp + dg) * 32 + ((kc) * KT) % 32;                    \
        TILE_LOAD(bt, p + (kc) * 16 * KT, 64);                                                                     \
        TILE_LOAD(6, vt, 32 * ES);                                                                                 \
        TILE_DP(0, 6, bt);                                                                                         \
        TILE_LOAD(7, vt + 16 * 32, 32 * ES);                                                                       \
        TILE_DP(1, 7, bt);                                                                                         \
        TILE_LOAD(6, vt + 32 * 32, 32 * ES);                                                                       \
        TILE_DP(2, 6, bt);                                                                                         \
        TILE_LOAD(7, vt + 48 * 32, 32 * ES);                                                                       \
        TILE_DP(3, 7, bt);                                                                                         \
    }
                        for (int kc = 0; kc < STEP / KT; kc += 2) {
                            PV_CHUNK(kc, 4)
                            PV_CHUNK(kc + 1, 5)
                        }
#undef PV_CHUNK
                        TILE_STORE(0, o, 64);
                        TILE_STORE(1, o + 256, 64);
                        TILE_STORE(2, o + 512, 64);
                        TILE_STORE(3, o + 768, 64);
                    }
                }
            }
        }
        for (int x = 0; x < nrt; x++) {
            FN(finish)(job, &w->rt[x], bh, slot, i0);
        }
    }
    return 0;
}

static int FN(units)(starling_job *job) {
    FN(scratch) w;
    int chunks = job->dp / KT;
    size_t qt = (size_t) SPLIT * chunks * TILE;
    size_t s = (size_t) STEP * 16 * sizeof(float);
    size_t p = (size_t) STEP * 16 * ES;
    size_t ot = (size_t) job->dvp * 16 * sizeof(float);
    size_t tmp = (size_t) (job->dp / 16 + 1) * 16 * 16 * sizeof(float);
    w.block = aligned_alloc(64, s + p + tmp + RT * (qt + ot + 3 * 64));
    if (w.block == NULL) {
        atomic_store(&job->failed, STARLING_NO_MEMORY);
        return STARLING_NO_MEMORY;
    }
    uint8_t *at = (uint8_t *) w.block;
    w.s = (float *) at;
    at += s;
    w.p = (elem *) at;
    at += p;
    w.tmp = (float *) at;
    at += tmp;
    for (int x = 0; x < RT; x++) {
        w.rt[x].qt = (elem *) at;
        at += qt;
        w.rt[x].ot = (float *) at;
        at += ot;
        w.rt[x].m = (float *) at;
        w.rt[x].l = (float *) (at + 64);
        w.rt[x].hi = (int32_t *) (at + 128);
        at += 3 * 64;
    }
    tiles_begin();
    for (int it = atomic_fetch_add(&job->next_unit, 1); it < job->nitems; it = atomic_fetch_add(&job->next_unit, 1)) {
        if (atomic_load(&job->nonfinite) || atomic_load(&job->failed)) {
            break;
        }
        if (FN(unit)(job, &w, it)) {
            atomic_store(&job->nonfinite, 1);
        }
    }
    tiles_end();
    free(w.block);
    return STARLING_OK;
}
