/*
 * The tile layer on the hardware: Intel AMX (tileloadd, tdpbf16ps, tilestored). Eight tiles of
 * 16 rows × 64 bytes, configured once per worker. Tile numbers must be constants.
 */
#ifndef STARLING_TILES_AMX_H
#define STARLING_TILES_AMX_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define TILES_STATE int tiles_unused_ __attribute__((unused)) = 0
typedef struct __attribute__((packed)) {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tile_config;

static inline void tiles_begin(void) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}
static inline void tiles_end(void) { _tile_release(); }
#define TILE_ZERO(c) _tile_zero(c)
#define TILE_LOAD(t, ptr, stride) _tile_loadd(t, ptr, stride)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define TILE_STORE(c, ptr, stride) _tile_stored(c, ptr, stride)
#define TILES_NAME "amx"
#endif
