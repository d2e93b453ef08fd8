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

  // theta_k = w_k x - phi_k (w_k x clipped)
  template <typename T, class P>
  static LA_INLINE V<T> phase(V<T> xv, const P& p, int d, int k, int j) {
    return clipped_phase<T>(xv, p(1 + d + k, j)) - p(1 + 2 * d + k, j);
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> xv[U], f[U];
    for (int u = 0; u < U; ++u) {
      xv[u] = vload(x + u * L<T>);
      f[u] = p(0, u * L<T>);
    }
    for (int k = 0; k < d; ++k)
      for (int u = 0; u < U; ++u) {
        const int j = u * L<T>;
        V<T> s, c;
        vsincos<T>(phase<T>(xv[u], p, d, k, j), s, c);
        f[u] += p(1 + k, j) * c;
      }
    for (int u = 0; u < U; ++u) vstore(y + u * L<T>, f[u]);
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const Acc<T>& acc,
                            const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> xv[U], gg[U], df[U];
    for (int u = 0; u < U; ++u) {
      const int j = u * L<T>;
      xv[u] = vload(x + j);
      gg[u] = vload(g + j);
      df[u] = vset(T(0));
      acc.add(0, j, gg[u]);
    }
    for (int k = 0; k < d; ++k)
      for (int u = 0; u < U; ++u) {
        const int j = u * L<T>;
        const V<T> amp = p(1 + k, j), fr = p(1 + d + k, j);
        V<T> s, c;
        vsincos<T>(phase<T>(xv[u], p, d, k, j), s, c);
        const V<T> as = gg[u] * amp * s;  // g c_k sin(theta)
        acc.add(1 + k, j, gg[u] * c);
        acc.add(1 + d + k, j, -(as * xv[u]));
        acc.add(1 + 2 * d + k, j, as);
        df[u] -= amp * fr * s;
      }
    for (int u = 0; u < U; ++u) vstore(gx + u * L<T>, gg[u] * df[u]);
  }
};

}  // namespace la
