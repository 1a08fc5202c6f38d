// starling_convert_{bf16,fp16} and starling_merge (split rows).
// Part of sparse_attention.cu (one translation unit, one fatbin); included in order, after its defines.
#pragma once

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
