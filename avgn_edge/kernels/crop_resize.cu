// Crop-resize-normalize: uint8 HWC frames of a ring -> normalised NCHW float32 / half.
//
// The arithmetic is exactly avgn_edge/kernels/reference.py (read it first): a separable
// triangle filter, for n outputs over the source interval [start, start + length):
//   s = length / n, support = max(s, 1), sample centre c_i = start + s * (i + 0.5),
//   tap j (pixel centre j + 0.5) weight = max(0, 1 - |j + 0.5 - c_i| / support),
//   taps outside [0, size) dropped, weights renormalised per axis,
//   output (v / 255 - mean[c]) / std[c]. Weights and sums in float32 (the box and
//   sample centres in double, a few operations per thread).
//
// One source, two compilers:
//   * NVRTC (device): __CUDACC_RTC__ is defined; cuda_fp16.h gives __half.
//   * g++ -x c++ -include host_driver.h (host): host_driver.h defines __global__ etc. as
//     empty and emulates blockIdx/threadIdx; the host_* entry points at the end of this
//     file run the grid serially, so the tests exercise the same arithmetic.
//
// Entry points (extern "C", stable names):  crop_resize_f32(CropArgs a)  -> float  output
//                                            crop_resize_f16(CropArgs a)  -> __half output
// Launch: block = (B, 1, 1), grid = (ceil(out_h * out_w / B), k, 1); thread -> one output
// pixel (all 3 channels) of snippet blockIdx.y.
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#include <cuda_fp16.h>
typedef __half half_t;
#define TO_HALF(v) __float2half_rn(v)
#else
#ifndef AVGN_HOST_DRIVER_H
#error "host build: compile with -include host_driver.h"
#endif
#endif

// Kernel arguments, passed by value. Mirrored by avgn_edge.kernels.launch.CropArgs
// (ctypes): keep the field order and types in sync. 8-byte fields first, so no
// padding before the 4-byte fields; sizeof == 96 on every 64-bit ABI we target.
struct CropArgs {
    const unsigned char* frames;  // [T, H, W, 3] uint8, contiguous ring
    const int* indices;           // [k] snippet indices; slot = (start + idx) % T.
                                  //   nullptr: idx = n (k consecutive frames from start)
    const float* centres;         // [k, 2] (x, y) in [0, 1]; nullptr: whole frame (glance)
    void* out;                    // [k, 3, out_h, out_w] float or half
    double box_frac;              // box side as a fraction of the frame's width / height
                                  //   (double: a float32 0.3 moves a 1920-px box by 1e-4 px)
    int T, H, W, start, k, out_h, out_w;
    float mean[3], std[3];        // per output channel (after swap_rb)
    int swap_rb;                  // nonzero: source is BGR, output RGB
};
static_assert(sizeof(CropArgs) == 96, "CropArgs layout changed: update launch.CropArgs");

// One axis of the separable filter for output index i. The sample centre is kept as
// integer + fraction (ci + cf, computed in double once per thread) so the per-tap offset
// j + 0.5 - c = (j - ci) + (0.5 - cf) is accurate in float32 even 600 pixels into a frame
// (a plain float32 centre there is off by up to 3e-5 px, ~1e-4 after normalisation).
struct Axis {
    int lo, hi;                   // inclusive tap range, clipped to [0, size)
    int ci;                       // floor(centre)
    float off, support, total;    // 0.5 - frac(centre), filter half-width, sum of weights
};

__device__ __forceinline__ float tap_weight(int j, const Axis& a) {
    return fmaxf(0.0f, 1.0f - fabsf((float)(j - a.ci) + a.off) / a.support);
}

__device__ __forceinline__ Axis make_axis(int size, int n, double start, double length, int i) {
    Axis a;
    const double s = length / n;
    const double support = s > 1.0 ? s : 1.0;
    const double c = start + s * (i + 0.5);
    a.ci = (int)floor(c);
    a.off = (float)(0.5 - (c - a.ci));
    a.support = (float)support;
    // non-zero taps satisfy |j + 0.5 - c| < support; one extra tap either side is harmless
    // (weight 0) and guards against rounding at the ends.
    const int lo = (int)floor(c - support - 0.5);
    const int hi = (int)ceil(c + support - 0.5);
    a.lo = lo < 0 ? 0 : lo;
    a.hi = hi > size - 1 ? size - 1 : hi;
    a.total = 0.0f;
    for (int j = a.lo; j <= a.hi; ++j) a.total += tap_weight(j, a);
    if (!(a.total > 0.0f)) a.total = 1.0f;  // as the reference: no taps -> zeros, not NaN
    return a;
}

__device__ __forceinline__ void store(float* out, size_t i, float v) { out[i] = v; }
__device__ __forceinline__ void store(half_t* out, size_t i, float v) { out[i] = TO_HALF(v); }

template <typename OutT>
__device__ __forceinline__ void crop_resize_impl(const CropArgs& a) {
    const int n = (int)blockIdx.y;
    const int p = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (n >= a.k || p >= a.out_h * a.out_w) return;
    const int oy = p / a.out_w, ox = p % a.out_w;

    // box (x0, y0, bw, bh) in source pixels, as reference.patch_box (double: see Axis)
    double x0 = 0.0, y0 = 0.0, bw = a.W, bh = a.H;
    if (a.centres != nullptr) {
        const double half = 0.5 * a.box_frac;
        const double cx = fmin(fmax((double)a.centres[2 * n], half), 1.0 - half);
        const double cy = fmin(fmax((double)a.centres[2 * n + 1], half), 1.0 - half);
        x0 = (cx - half) * a.W;
        y0 = (cy - half) * a.H;
        bw = a.box_frac * a.W;
        bh = a.box_frac * a.H;
    }
    const int idx = a.indices != nullptr ? a.indices[n] : n;
    int slot = (a.start + idx) % a.T;
    if (slot < 0) slot += a.T;  // Python's modulo
    const unsigned char* img = a.frames + (size_t)slot * a.H * a.W * 3;

    const Axis ay = make_axis(a.H, a.out_h, y0, bh, oy);
    const Axis ax = make_axis(a.W, a.out_w, x0, bw, ox);
    float acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f;
    for (int y = ay.lo; y <= ay.hi; ++y) {
        const float wy = tap_weight(y, ay);
        if (wy == 0.0f) continue;
        const unsigned char* row = img + ((size_t)y * a.W) * 3;
        float r0 = 0.0f, r1 = 0.0f, r2 = 0.0f;
        for (int x = ax.lo; x <= ax.hi; ++x) {
            const float wx = tap_weight(x, ax);
            const unsigned char* px = row + 3 * x;
            r0 += wx * (float)px[0];
            r1 += wx * (float)px[1];
            r2 += wx * (float)px[2];
        }
        acc0 += wy * r0;
        acc1 += wy * r1;
        acc2 += wy * r2;
    }
    const float norm = 1.0f / (ay.total * ax.total);
    float v[3] = {acc0 * norm, acc1 * norm, acc2 * norm};  // source channel order, [0, 255]
    if (a.swap_rb) { const float t = v[0]; v[0] = v[2]; v[2] = t; }

    OutT* out = (OutT*)a.out;
    const size_t plane = (size_t)a.out_h * a.out_w;
    const size_t base = (size_t)n * 3 * plane + p;
    for (int c = 0; c < 3; ++c)
        store(out, base + c * plane, (v[c] / 255.0f - a.mean[c]) / a.std[c]);
}

extern "C" __global__ void crop_resize_f32(CropArgs a) { crop_resize_impl<float>(a); }
extern "C" __global__ void crop_resize_f16(CropArgs a) { crop_resize_impl<half_t>(a); }

#if !defined(__CUDACC_RTC__) && !defined(__CUDACC__)
// Host build: serial grid runners, called through ctypes by avgn_edge.kernels.host.
HOST_LAUNCHER(crop_resize_f32)
HOST_LAUNCHER(crop_resize_f16)
#endif
