// The online softmax state, finish and merge: mirrors dev.starling.api.plan.OnlineSoftmax.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

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
