// What every family kernel shares: the block width, how a kernel reads its parameters and
// accumulates their gradients, and the family integers. Included by each family's header
// (native/<family>.h); the schedules that run them: native/schedule.h.
//
// A family is a struct with
//   static int64_t width(const Cfg&)              its row of parameters per channel
//   static void fwd(x, y, n, p, cfg)              y over a block of n <= W lanes
//   static void bwd(x, g, gx, n, p, acc, cfg)     dL/dx, and acc(k, j) += dL/dp_k of lane j
// with p(k, j) parameter k of lane j. Each writes its math once, with loops over the
// parameter index outside and the lanes inside (so they vectorise for any degree).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#define LA_INLINE inline __attribute__((always_inline))

namespace la {

#ifndef LA_W
#define LA_W 32
#endif
constexpr int W = LA_W;  // lanes per block

// Parameter k of lane j: a shared row (run schedule) or column j of the transposed table.
template <typename T, bool LANES>
struct Par {
  const T* p;
  int64_t ld;  // lanes: C (row stride of the (P, C) table); run: unused
  inline T operator()(int k, int j) const { return LANES ? p[k * ld + j] : p[k]; }
};

// Accumulator of parameter k for lane j (T; flushed into double by the schedule).
template <typename T>
struct Acc {
  T* a;
  int64_t ld;
  inline T& operator()(int k, int j) const { return a[k * ld + j]; }
};

struct Cfg {
  int64_t a, b;  // family integers (degree; tails flag / denominator degree)
  // derivative conventions at the kinks, which frameworks' autodiff choose differently:
  // 0: JAX's (d|A|/dA = 1 at A = 0, d min(x, 0)/dx = 1/2 at 0), 1: PyTorch's (sign(0) = 0,
  // d clamp(x, max=0)/dx = 1 at 0); each binding passes its framework's
  int64_t ties = 0;
};

}  // namespace la
