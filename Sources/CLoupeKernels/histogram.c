#include "CLoupeKernels.h"
