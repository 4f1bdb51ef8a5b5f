#ifndef LOUPE_CLOUPEKERNELS_H
#define LOUPE_CLOUPEKERNELS_H
#include <stddef.h>
#include <stdint.h>
#endif
