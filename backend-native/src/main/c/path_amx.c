/* Kernel path amx-bf16: AMX tiles (tdpbf16ps). */
#define ELEM_BF16
#include "tiles_amx.h"
#define PATH_ID amx
#include "attention_kernel.h"

const starling_path starling_path_amx = {"amx-bf16", 2, 32, pack_amx, units_amx};
