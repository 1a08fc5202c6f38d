/* Kernel path portable-bf16: tiles emulated in plain C (any x86-64 CPU). */
#define ELEM_BF16
#include "tiles_emulated.h"
#define PATH_ID tiles_bf16
#include "attention_kernel.h"

const starling_path starling_path_tiles_bf16 = {"portable-bf16", 2, 32, pack_tiles_bf16, units_tiles_bf16};
