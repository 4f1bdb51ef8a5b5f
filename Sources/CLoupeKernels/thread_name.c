// pthread_setname_np is behind _GNU_SOURCE on Linux, which Swift's Glibc module leaves out.
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "CLoupeKernels.h"

void loupe_name_this_thread(const char *name) {
    char truncated[16];  // Linux keeps 15 characters and the terminator.
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
#if defined(__APPLE__)
    pthread_setname_np(truncated);
#else
    pthread_setname_np(pthread_self(), truncated);
#endif
}
