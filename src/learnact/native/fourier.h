// Fourier: f = a_0 + sum_k c_k cos(w_k x - phi_k)   (w_k x clipped: vecmath.h clipped_phase)
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"
#include "vecmath.h"

namespace la {

// ------------------------------------------------------------------------------------------
// fourier: row = bias, amplitude_1..d, frequency_1..d, phase_1..d   (a = d)
// ------------------------------------------------------------------------------------------
struct Fourier {
  static int64_t width(const Cfg& c) { return 1 + 3 * c.a; }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    T f[W], t[W], s[W], c[W];
    for (int j = 0; j < n; ++j) f[j] = p(0, j);
    for (int k = 0; k < d; ++k) {
      for (int j = 0; j < n; ++j)
        t[j] = clipped_phase(x[j], p(1 + d + k, j)) - p(1 + 2 * d + k, j);
      sincos_block<T>(t, n, s, c);
      for (int j = 0; j < n; ++j) f[j] += p(1 + k, j) * c[j];
    }
    for (int j = 0; j < n; ++j) y[j] = f[j];
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    // inputs and parameters copied into the block's own arrays: the stores into acc may
    // not alias them, and the loops vectorise (with raw pointers GCC gives up on the alias
    // checks)
    T xs[W], gs[W], amp[W], fr[W], df[W], t[W], s[W], c[W];
    for (int j = 0; j < n; ++j) {
      xs[j] = x[j];
      gs[j] = g[j];
      df[j] = T(0);
      acc(0, j) += gs[j];
    }
    for (int k = 0; k < d; ++k) {
      for (int j = 0; j < n; ++j) {
        amp[j] = p(1 + k, j);
        fr[j] = p(1 + d + k, j);
        t[j] = clipped_phase(xs[j], fr[j]) - p(1 + 2 * d + k, j);
      }
      sincos_block<T>(t, n, s, c);
      for (int j = 0; j < n; ++j) {
        const T as = gs[j] * amp[j] * s[j];  // g c_k sin(theta)
        acc(1 + k, j) += gs[j] * c[j];
        acc(1 + d + k, j) -= as * xs[j];
        acc(1 + 2 * d + k, j) += as;
        df[j] -= amp[j] * fr[j] * s[j];
      }
    }
    for (int j = 0; j < n; ++j) gx[j] = gs[j] * df[j];
  }
};

}  // namespace la
