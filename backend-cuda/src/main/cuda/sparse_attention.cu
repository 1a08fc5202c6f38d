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
// Every kernel takes one argument, `Params` (params.cuh), by value. KernelParams.java fills it (the one
// place on the host); the static_asserts after the struct pin its layout, and a Java test checks that
// KernelParams writes the same offsets. The shared-memory carve-up is computed on the host
// (SharedLayout.java) and passed in the struct: the kernels do not re-derive it.
//
// Masking, exactly as DESIGN section 2, in the small device functions of mask.cuh that mirror
// TokenMask.java; the softmax state, finish and merge policy (softmax.cuh) mirror OnlineSoftmax.java.
// One header per part, included below in order: params, mask, softmax, tile (where a CTA works),
// then one header per kernel family. They form one translation unit and one fatbin.
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
// starling_bwd_delta, starling_bwd_dq and starling_bwd_dkdv in kernels_backward.cuh, float32.

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

#include "params.cuh"
#include "mask.cuh"
#include "softmax.cuh"
#include "tile.cuh"
#include "kernels_fp32.cuh"
#include "kernels_wmma.cuh"
#include "kernels_mma.cuh"
#include "kernels_convert_merge.cuh"
#include "kernels_backward.cuh"
