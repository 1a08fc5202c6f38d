// The token mask: mirrors dev.starling.api.plan.TokenMask.
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

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
