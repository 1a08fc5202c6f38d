/* Kernel path portable-fp32: float32 tiles in plain C (any x86-64 CPU). */
#include "tiles_emulated.h"
#define PATH_ID portable_fp32
#include "attention_kernel.h"

const starling_path starling_path_portable_fp32 = {"portable-fp32", 4, 16, pack_portable_fp32, units_portable_fp32};
