// Host prelude for building crop_resize.cu with g++ (see avgn_edge/kernels/host.py):
//   g++ -x c++ -std=c++17 -O2 -shared -fPIC -include host_driver.h crop_resize.cu
// CUDA qualifiers become no-ops, the built-in thread indices become (thread-local)
// globals, and HOST_LAUNCHER(kernel) defines `extern "C" void host_<kernel>(const
// CropArgs*, grid_x, grid_y, block_x)` that runs the whole grid serially.
#ifndef AVGN_HOST_DRIVER_H
#define AVGN_HOST_DRIVER_H

#include <math.h>
#include <stddef.h>

#define __global__
#define __device__
#define __forceinline__ inline

typedef _Float16 half_t;  // GCC >= 12 on x86-64, and aarch64; rounds to nearest even
#define TO_HALF(v) ((half_t)(v))

struct host_uint3 { unsigned x, y, z; };
static thread_local host_uint3 blockIdx, threadIdx, blockDim, gridDim;

#define HOST_LAUNCHER(kernel)                                                           \
    extern "C" void host_##kernel(const CropArgs* a, unsigned gx, unsigned gy, unsigned bx) { \
        gridDim = {gx, gy, 1};                                                          \
        blockDim = {bx, 1, 1};                                                          \
        for (unsigned y = 0; y < gy; ++y)                                               \
            for (unsigned x = 0; x < gx; ++x)                                           \
                for (unsigned t = 0; t < bx; ++t) {                                     \
                    blockIdx = {x, y, 0};                                               \
                    threadIdx = {t, 0, 0};                                              \
                    kernel(*a);                                                         \
                }                                                                       \
    }

#endif  // AVGN_HOST_DRIVER_H
