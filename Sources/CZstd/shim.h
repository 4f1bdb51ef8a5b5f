#ifndef LOUPE_CZSTD_SHIM_H
#define LOUPE_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
