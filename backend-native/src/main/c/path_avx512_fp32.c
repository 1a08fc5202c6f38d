/* Kernel path avx512-fp32: float32 tiles emulated with AVX-512F FMA. */
#define EMULATE_WITH_AVX512F
#include "tiles_emulated.h"
#define PATH_ID avx512_fp32
#include "attention_kernel.h"

const starling_path starling_path_avx512_fp32 = {"avx512-fp32", 4, 16, pack_avx512_fp32, units_avx512_fp32};
