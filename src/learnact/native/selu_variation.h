// SELU variation: f = s lam (x if x > 0 else alpha expm1(beta xn) + gamma sin(omega xn)) + t
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"
#include "vecmath.h"

namespace la {

// ------------------------------------------------------------------------------------------
// selu_variation: row = lam, alpha, beta, gamma, omega, scale, offset
//   f = s lam (x if x > 0 else alpha expm1(beta xn) + gamma sin(omega xn)) + t, xn = min(x, 0)
//   (d min(x, 0)/dx at x = 0: the binding's convention, Cfg::ties)
// ------------------------------------------------------------------------------------------
struct SELUVariation {
  static int64_t width(const Cfg&) { return 7; }

  template <typename T, class P>
  static LA_INLINE void negative(const T* x, int n, const P& p, T* xn, T* e, T* s, T* c) {
    T z[W], w[W];
    for (int j = 0; j < n; ++j) {
      xn[j] = std::min(x[j], T(0));
      z[j] = p(2, j) * xn[j];
      w[j] = clipped_phase(xn[j], p(4, j));
    }
    expm1_block<T>(z, n, e);
    sincos_block<T>(w, n, s, c);
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg&) {
    T xn[W], e[W], s[W], c[W];
    negative(x, n, p, xn, e, s, c);
    for (int j = 0; j < n; ++j) {
      const T neg = p(1, j) * e[j] + p(3, j) * s[j];
      y[j] = p(5, j) * (p(0, j) * (x[j] > T(0) ? x[j] : neg)) + p(6, j);
    }
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const bool tie = cfg.ties != 0;  // d min(x, 0)/dx at 0: 1 (PyTorch) or 1/2 (JAX)
    T xn[W], e[W], s[W], c[W], xs[W], gs[W], q[7][W];  // own copies, as in Fourier::bwd
    negative(x, n, p, xn, e, s, c);
    for (int j = 0; j < n; ++j) {
      xs[j] = x[j];
      gs[j] = g[j];
    }
    for (int k = 0; k < 7; ++k)
      for (int j = 0; j < n; ++j) q[k][j] = p(k, j);
    for (int j = 0; j < n; ++j) {
      const T la = q[0][j], al = q[1][j], be = q[2][j], ga = q[3][j], om = q[4][j],
              sc = q[5][j];
      const bool pos = xs[j] > T(0);
      const T neg = al * e[j] + ga * s[j];
      const T u = pos ? xs[j] : neg;
      const T gn = pos ? T(0) : gs[j] * sc * la;  // dL/d(neg)
      const T dxn = xs[j] < T(0) || tie ? T(1) : T(0.5);
      q[0][j] = gs[j] * sc * u;  // the terms, overwriting the parameters
      q[1][j] = gn * e[j];
      q[2][j] = gn * al * (e[j] + T(1)) * xn[j];
      q[3][j] = gn * s[j];
      q[4][j] = gn * ga * c[j] * xn[j];
      q[5][j] = gs[j] * la * u;
      q[6][j] = gs[j];
      gx[j] = pos ? gs[j] * sc * la : gn * (al * be * (e[j] + T(1)) + ga * om * c[j]) * dxn;
    }
    // one accumulator row per loop: seven rows in one loop need more alias checks than GCC
    // makes, and it stays scalar (3.5x slower)
    for (int k = 0; k < 7; ++k)
      for (int j = 0; j < n; ++j) acc(k, j) += q[k][j];
  }
};

}  // namespace la
