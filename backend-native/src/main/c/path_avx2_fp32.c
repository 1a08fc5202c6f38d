/* Kernel path avx2-fp32: float32 tiles in plain C compiled for AVX2 and FMA. */
#include "tiles_emulated.h"
#define PATH_ID avx2_fp32
#include "attention_kernel.h"

const starling_path starling_path_avx2_fp32 = {"avx2-fp32", 4, 16, pack_avx2_fp32, units_avx2_fp32};
