/*
 * The fused block-sparse attention kernel, written once against the tile layer (TILE_ZERO,
 * TILE_LOAD, TILE_DP, TILE_STORE on eight tiles of 16 rows × 64 bytes). Each path file defines
 * the element type (ELEM_BF16 or float32), includes a tile layer (tiles_amx.h or
 * tiles_emulated.h) and then this file with PATH_ID set; it is compiled with that path's
 * instruction-set flags. So the AMX algorithm is the algorithm of every path.
 *
 * Per work item (a query block against a range of its allowed key blocks, WorkPlan):
 *   for each tile of 16 query rows: Q rows converted into a tile buffer [16][Dp];
 *     for each allowed key block, in steps of 64 keys (4 score tiles of 16 keys):
 *       S = Q·Kᵀ                  4 accumulators, Dp / KT products each (K packed per 16 keys);
 *                                 in bf16 as Qh·Kh + Qh·Kl + Ql·Kh, each operand split into a
 *                                 bf16 high part and a bf16 remainder, so the scores carry about
 *                                 16 bits (rounding Q and K once errs by 2^-9 of s·Σ|q·k|, which
 *                                 a sharp softmax turns into errors past the bf16 tolerance row);
 *       online softmax per row    base-2 scores t = S·s·log2 e, keys outside the row's TokenMask
 *                                 range are −∞, m' = max(m, max t), α = 2^(m − m'),
 *                                 P = 2^(t − m') (exactly 0 outside the range), l = α·l + Σ P;
 *       O = α·O + P·V             per 64 value features: 4 accumulators, 64 / KT products each
 *                                 (V packed per KT keys in pairs along the keys).
 *   finish: O / l and LSE = m·ln 2 + ln l, or O = 0 and LSE = −∞ for a row that read no key;
 *   a split row's part writes its normalised partial for the Java merge (OnlineSoftmax.merge).
 * Only finite inputs reach it: the packing and the Q conversion report NaN or ±∞ and the call
 * is then computed exactly in Java (NativePlan), so a masked key is a zero weight and nothing
 * else.
 */
#include "starling_job.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef ELEM_BF16
typedef uint16_t elem;
#define PAIR 2
/* Scores from split operands: K and Q packed twice, high part then remainder. */
#define SPLIT 2
#else
typedef float elem;
#define PAIR 1
#define SPLIT 1
#endif
/* Reduction elements per 64-byte tile row. */
#define KT (16 * PAIR)
#define ES ((int) sizeof(elem))
/* Keys per softmax step. */
#define STEP 64
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

/*
 * Packs keys [j0, j1) of one (b, kv head) of K and V into the tile layouts (zeros past Nk, D and
 * Dv), and says whether one of the values read is not finite.
 *   K: per 16 keys g, per reduction chunk c: a 16 × 64-byte B tile, row r holds for key n the
 *      features c·KT + r·PAIR + t at element n·PAIR + t.
 *   V: per KT keys g: 16 rows of Dvp·PAIR elements, row r holds for feature n the keys
 *      g·KT + r·PAIR + t at element n·PAIR + t (a B tile per 16 features, row stride Dvp·4 bytes).
 */
static int FN(pack_range)(const starling_job *job, int head, int j0, int j1) {
    int b = head / job->kvheads;
    int kvh = head % job->kvheads;
    int chunks = job->dp / KT;
    elem *kdst = (elem *) (job->kpack + (int64_t) head * job->khead_bytes);
    int64_t klo = job->khead_bytes / SPLIT / ES; /* elements from a high part to its remainder */
    elem *vdst = (elem *) (job->vpack + (int64_t) head * job->vhead_bytes);
    int bad = 0;
    for (int j = j0; j < j1; j++) {
        const float *ks = j < job->nk ? job->k + b * job->ks[0] + kvh * job->ks[1] + j * job->ks[2] : NULL;
        const float *vs = j < job->nk ? job->v + b * job->vs[0] + kvh * job->vs[1] + j * job->vs[2] : NULL;
        elem *kg = kdst + (int64_t) (j / 16) * chunks * (16 * KT) + (j % 16) * PAIR;
        for (int d = 0; d < job->dp; d++) {
            float x = ks != NULL && d < job->d ? ks[d] : 0.0f;
            bad |= !FN(is_finite_bits)(x);
            int64_t at = (d / KT) * (16 * KT) + ((d % KT) / PAIR) * (16 * PAIR) + (d % PAIR);
            kg[at] = FN(to_elem)(x);
            if (SPLIT > 1) {
                kg[at + klo] = FN(remainder)(x, kg[at]);
            }
        }
        elem *vg = vdst + (int64_t) (j / KT) * 16 * job->dvp * PAIR + ((j % KT) / PAIR) * job->dvp * PAIR + (j % PAIR);
        for (int n = 0; n < job->dvp; n++) {
            float x = vs != NULL && n < job->dv ? vs[n] : 0.0f;
            bad |= !FN(is_finite_bits)(x);
            vg[n * PAIR] = FN(to_elem)(x);
        }
    }
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

/* 2^x for x <= 0 (x = −∞ gives 0); relative error about 2e-7. */
#ifdef __AVX512F__
#include <immintrin.h>
static inline __m512 FN(exp2v)(__m512 x, __mmask16 keep) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-127.0f));
    __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_mul_ps(_mm512_sub_ps(x, k), _mm512_set1_ps((float) LN2));
    /* e^r on [−ln2/2, ln2/2], minimax (the vector backend's coefficients). */
    __m512 p = _mm512_set1_ps(0.00830034725368023f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.04192250594496727f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.16667574644088745f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.4999881982803345f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.9999997019767761f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0000001192092896f));
    return _mm512_maskz_scalef_ps(keep, p, k);
}
#endif

static inline float FN(exp2s)(float x) {
    if (x < -127.0f) {
        x = -127.0f;
    }
    float k = (x + 12582912.0f) - 12582912.0f; /* nearest integer: 1.5·2^23 */
    float r = (x - k) * (float) LN2;
    float p = 0.00830034725368023f;
    p = p * r + 0.04192250594496727f;
    p = p * r + 0.16667574644088745f;
    p = p * r + 0.4999881982803345f;
    p = p * r + 0.9999997019767761f;
    p = p * r + 1.0000001192092896f;
    uint32_t bits = (uint32_t) ((int) k + 127) << 23;
    float two;
    memcpy(&two, &bits, 4);
    return p * two;
}

/*
 * The online softmax of one row over one step of 64 keys: scores s (float32, unscaled), allowed
 * keys [lo, hi) of the step (0 <= lo < hi <= 64). Updates m (base 2) and l, returns α, writes P.
 */
static inline float FN(softmax_row)(const float *s, int lo, int hi, float scale2, float *m, double *l, elem *prow) {
#ifdef __AVX512F__
    uint64_t bits = (hi >= 64 ? ~0ull : ((1ull << hi) - 1)) & ~((1ull << lo) - 1);
    __m512 sc = _mm512_set1_ps(scale2);
    __m512 neg = _mm512_set1_ps(-INFINITY);
    __m512 t[4];
    __mmask16 keep[4];
    for (int x = 0; x < 4; x++) {
        keep[x] = (__mmask16) (bits >> (16 * x));
        t[x] = _mm512_mask_mul_ps(neg, keep[x], _mm512_loadu_ps(s + 16 * x), sc);
    }
    float bm = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(t[0], t[1]), _mm512_max_ps(t[2], t[3])));
    float mn = bm > *m ? bm : *m;
    float alpha = *m == mn ? 1.0f : FN(exp2s)(*m - mn);
    __m512 vm = _mm512_set1_ps(mn);
    __m512 p[4];
    for (int x = 0; x < 4; x++) {
        p[x] = FN(exp2v)(_mm512_sub_ps(t[x], vm), keep[x]);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(p[0], p[1]), _mm512_add_ps(p[2], p[3])));
#ifdef ELEM_BF16
    _mm512_storeu_si512((void *) prow, (__m512i) _mm512_cvtne2ps_pbh(p[1], p[0]));
    _mm512_storeu_si512((void *) (prow + 32), (__m512i) _mm512_cvtne2ps_pbh(p[3], p[2]));
#else
    for (int x = 0; x < 4; x++) {
        _mm512_storeu_ps(prow + 16 * x, p[x]);
    }
#endif
#else
    float t[STEP];
    float bm = -INFINITY;
    for (int x = 0; x < STEP; x++) {
        t[x] = x >= lo && x < hi ? s[x] * scale2 : -INFINITY;
        bm = t[x] > bm ? t[x] : bm;
    }
    float mn = bm > *m ? bm : *m;
    float alpha = *m == mn ? 1.0f : FN(exp2s)(*m - mn);
    float sum = 0.0f;
    for (int x = 0; x < STEP; x++) {
        float p = x >= lo && x < hi ? FN(exp2s)(t[x] - mn) : 0.0f;
        sum += p;
        prow[x] = FN(to_elem)(p);
    }
#endif
    *l = *l * alpha + sum;
    *m = mn;
    return alpha;
}

/* What one worker owns while it runs items. */
typedef struct {
    elem *qt;    /* [16][Dp], and with SPLIT the remainders [16][Dp] after it */
    float *acc;  /* [16][Dvp] */
    float *s;    /* [16][64] */
    elem *p;     /* [16][64] */
    float *pv;   /* [16][64] */
    void *block;
} FN(scratch);

/* Converts rows [r0, r0 + rows) of (b, h) into the Q tile buffer; says whether one is not finite. */
static int FN(load_queries)(const starling_job *job, FN(scratch) *w, int b, int h, int r0, int rows) {
    int bad = 0;
    for (int r = 0; r < 16; r++) {
        elem *dst = w->qt + (int64_t) r * job->dp;
        const float *src = r < rows ? job->q + b * job->qs[0] + h * job->qs[1] + (int64_t) (r0 + r) * job->qs[2] : NULL;
        for (int d = 0; d < job->dp; d++) {
            float x = src != NULL && d < job->d ? src[d] : 0.0f;
            bad |= !FN(is_finite_bits)(x);
            dst[d] = FN(to_elem)(x);
            if (SPLIT > 1) {
                dst[d + 16 * job->dp] = FN(remainder)(x, dst[d]);
            }
        }
    }
    return bad;
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
    int dvp = job->dvp;
    const uint8_t *kbase = job->kpack + (int64_t) (b * job->kvheads + kvh) * job->khead_bytes;
    const uint8_t *vbase = job->vpack + (int64_t) (b * job->kvheads + kvh) * job->vhead_bytes;
    int64_t vrow = (int64_t) dvp * PAIR * ES;
    float m[16], alpha[16];
    double l[16];
    int rke[16];
    for (int r0 = i0; r0 < i1; r0 += 16) {
        int rows = i1 - r0 < 16 ? i1 - r0 : 16;
        if (FN(load_queries)(job, w, b, h, r0, rows)) {
            return 1;
        }
        int kmax = 0;
        for (int r = 0; r < 16; r++) {
            rke[r] = r < rows ? job->row_key_end[(int64_t) b * job->nq + r0 + r] : 0;
            kmax = rke[r] > kmax ? rke[r] : kmax;
            m[r] = -INFINITY;
            l[r] = 0.0;
        }
        memset(w->acc, 0, sizeof(float) * 16 * dvp);
        memset(w->p, 0, sizeof(elem) * 16 * STEP);
        for (int pos = begin; pos < end; pos++) {
            int kb = job->key_blocks[pos];
            int j0 = kb * job->kblock;
            int j1 = j0 + job->kblock < job->nk ? j0 + job->kblock : job->nk;
            int jmax = j1 < kmax ? j1 : kmax;
            for (int g0 = j0 & ~31; g0 < jmax; g0 += STEP) {
                /* S = Q·Kᵀ for keys [g0, g0 + 64). */
                const uint8_t *kg = kbase + (int64_t) (g0 / 16) * chunks * 1024;
                TILE_ZERO(0);
                TILE_ZERO(1);
                TILE_ZERO(2);
                TILE_ZERO(3);
                for (int c = 0; c < chunks; c++) {
                    TILE_LOAD(4, w->qt + c * KT, (int64_t) job->dp * ES);
                    TILE_LOAD(5, kg + (int64_t) c * 1024, 64);
                    TILE_DP(0, 4, 5);
                    TILE_LOAD(6, kg + (int64_t) (chunks + c) * 1024, 64);
                    TILE_DP(1, 4, 6);
                    TILE_LOAD(7, kg + (int64_t) (2 * chunks + c) * 1024, 64);
                    TILE_DP(2, 4, 7);
                    TILE_LOAD(5, kg + (int64_t) (3 * chunks + c) * 1024, 64);
                    TILE_DP(3, 4, 5);
#if SPLIT > 1
                    /* + Qh·Kl, then + Ql·Kh (tile 4 still holds Qh). */
                    const uint8_t *kl = kg + job->khead_bytes / 2;
                    TILE_LOAD(5, kl + (int64_t) c * 1024, 64);
                    TILE_DP(0, 4, 5);
                    TILE_LOAD(6, kl + (int64_t) (chunks + c) * 1024, 64);
                    TILE_DP(1, 4, 6);
                    TILE_LOAD(7, kl + (int64_t) (2 * chunks + c) * 1024, 64);
                    TILE_DP(2, 4, 7);
                    TILE_LOAD(5, kl + (int64_t) (3 * chunks + c) * 1024, 64);
                    TILE_DP(3, 4, 5);
                    TILE_LOAD(4, w->qt + 16 * job->dp + c * KT, (int64_t) job->dp * ES);
                    TILE_LOAD(5, kg + (int64_t) c * 1024, 64);
                    TILE_DP(0, 4, 5);
                    TILE_LOAD(6, kg + (int64_t) (chunks + c) * 1024, 64);
                    TILE_DP(1, 4, 6);
                    TILE_LOAD(7, kg + (int64_t) (2 * chunks + c) * 1024, 64);
                    TILE_DP(2, 4, 7);
                    TILE_LOAD(5, kg + (int64_t) (3 * chunks + c) * 1024, 64);
                    TILE_DP(3, 4, 5);
#endif
                }
                TILE_STORE(0, w->s, STEP * 4);
                TILE_STORE(1, w->s + 16, STEP * 4);
                TILE_STORE(2, w->s + 32, STEP * 4);
                TILE_STORE(3, w->s + 48, STEP * 4);
                int lo = j0 > g0 ? j0 - g0 : 0;
                for (int r = 0; r < rows; r++) {
                    int hi = (j1 < rke[r] ? j1 : rke[r]) - g0;
                    hi = hi > STEP ? STEP : hi;
                    elem *prow = w->p + r * STEP;
                    if (hi <= lo) {
                        alpha[r] = 1.0f;
                        memset(prow, 0, sizeof(elem) * STEP);
                        continue;
                    }
                    alpha[r] = FN(softmax_row)(w->s + r * STEP, lo, hi, job->scale2, &m[r], &l[r], prow);
                }
                /* O = α·O + P·V, 64 value features at a time. */
                const uint8_t *vg = vbase + (int64_t) (g0 / KT) * 16 * vrow;
                for (int dg = 0; dg < dvp / 64; dg++) {
                    TILE_ZERO(0);
                    TILE_ZERO(1);
                    TILE_ZERO(2);
                    TILE_ZERO(3);
                    for (int kc = 0; kc < STEP / KT; kc++) {
                        const uint8_t *vt = vg + (int64_t) kc * 16 * vrow + dg * 256;
                        TILE_LOAD(4, w->p + kc * KT, STEP * ES);
                        TILE_LOAD(5, vt, vrow);
                        TILE_DP(0, 4, 5);
                        TILE_LOAD(6, vt + 64, vrow);
                        TILE_DP(1, 4, 6);
                        TILE_LOAD(7, vt + 128, vrow);
                        TILE_DP(2, 4, 7);
                        TILE_LOAD(5, vt + 192, vrow);
                        TILE_DP(3, 4, 5);
                    }
                    TILE_STORE(0, w->pv, STEP * 4);
                    TILE_STORE(1, w->pv + 16, STEP * 4);
                    TILE_STORE(2, w->pv + 32, STEP * 4);
                    TILE_STORE(3, w->pv + 48, STEP * 4);
                    for (int r = 0; r < rows; r++) {
                        float a = alpha[r];
                        float *o = w->acc + (int64_t) r * dvp + dg * 64;
                        const float *pv = w->pv + r * STEP;
                        for (int x = 0; x < 64; x++) {
                            o[x] = o[x] * a + pv[x];
                        }
                    }
                }
            }
        }
        for (int r = 0; r < rows; r++) {
            int i = r0 + r;
            float *o;
            float *lse;
            if (slot < 0) {
                o = job->out + b * job->os[0] + h * job->os[1] + (int64_t) i * job->os[2];
                lse = job->lse == NULL ? NULL : job->lse + ((int64_t) b * job->qheads + h) * job->nq + i;
            } else {
                int64_t at = ((int64_t) bh * job->slots_per_layout + slot) * job->qrows + (i - i0);
                o = job->part_out + at * job->dv;
                lse = job->part_lse + at;
            }
            const float *a = w->acc + (int64_t) r * dvp;
            if (m[r] == -INFINITY) {
                memset(o, 0, sizeof(float) * job->dv);
                if (lse != NULL) {
                    *lse = -INFINITY;
                }
            } else {
                float inv = (float) (1.0 / l[r]);
                for (int x = 0; x < job->dv; x++) {
                    o[x] = a[x] * inv;
                }
                if (lse != NULL) {
                    *lse = (float) (m[r] * LN2 + log(l[r]));
                }
            }
        }
    }
    return 0;
}

static int FN(units)(starling_job *job) {
    FN(scratch) w;
    size_t qt = (size_t) SPLIT * 16 * job->dp * ES;
    size_t acc = (size_t) 16 * job->dvp * sizeof(float);
    size_t step = (size_t) 16 * STEP * sizeof(float);
    w.block = aligned_alloc(64, qt + acc + 3 * step);
    if (w.block == NULL) {
        atomic_store(&job->failed, STARLING_NO_MEMORY);
        return STARLING_NO_MEMORY;
    }
    w.qt = (elem *) w.block;
    w.acc = (float *) ((uint8_t *) w.block + qt);
    w.s = (float *) ((uint8_t *) w.acc + acc);
    w.p = (elem *) ((uint8_t *) w.s + step);
    w.pv = (float *) ((uint8_t *) w.p + step);
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
