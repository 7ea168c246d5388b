// The CUDA emulation's runtime API header is cuda_runtime.h (tests/cuda_emu/include).
#pragma once
#include <cuda_runtime.h>
