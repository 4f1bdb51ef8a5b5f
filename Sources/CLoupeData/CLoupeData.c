// Embeds bundled/diamonds.csv.zst in the binary, so `loupe` carries its default training data
// with it wherever the executable is copied (SwiftPM resource bundles live beside the binary
// and are lost when it moves). `.incbin` resolves the file through the target's
// headerSearchPath("bundled"), which SwiftPM passes as an absolute -I.
#include "CLoupeData.h"

__asm__(
    ".section .rodata\n"
    ".balign 16\n"
    ".globl loupe_diamonds_zst_start\n"
    "loupe_diamonds_zst_start:\n"
    ".incbin \"diamonds.csv.zst\"\n"
    ".globl loupe_diamonds_zst_end\n"
    "loupe_diamonds_zst_end:\n"
    ".previous\n");

extern const uint8_t loupe_diamonds_zst_start[];
extern const uint8_t loupe_diamonds_zst_end[];

const uint8_t *loupe_bundled_diamonds_zst(void) { return loupe_diamonds_zst_start; }

size_t loupe_bundled_diamonds_zst_size(void) {
    return (size_t)(loupe_diamonds_zst_end - loupe_diamonds_zst_start);
}
