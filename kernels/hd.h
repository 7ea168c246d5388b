// AWARE_HD marks small functions callable from host and device code (CUDA twins share them).
#pragma once
#if defined(__CUDACC__)
#define AWARE_HD __host__ __device__ __forceinline__
#else
#define AWARE_HD inline
#endif
