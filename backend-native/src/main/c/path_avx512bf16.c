/* Kernel path avx512-bf16: tiles emulated with vdpbf16ps (AVX512-BF16). */
#define ELEM_BF16
#define EMULATE_WITH_AVX512BF16
#include "tiles_emulated.h"
#define PATH_ID avx512bf16
#include "attention_kernel.h"

const starling_path starling_path_avx512bf16 = {"avx512-bf16", 2, 32, pack_avx512bf16, units_avx512bf16};
