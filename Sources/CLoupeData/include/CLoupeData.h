#ifndef LOUPE_CLOUPEDATA_H
#define LOUPE_CLOUPEDATA_H
#include <stddef.h>
#include <stdint.h>

/// The bundled diamonds data (../bundled/diamonds.csv.zst): a zstd frame linked into the binary.
const uint8_t *loupe_bundled_diamonds_zst(void);
/// Size in bytes of the compressed frame.
size_t loupe_bundled_diamonds_zst_size(void);

#endif
