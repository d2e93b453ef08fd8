// Hermite: f = sum_k c_k h_k(x), h_k = He_k/k!; tails: P(xb) + P'(xb)(x - xb), xb = clamp(x, lo, hi)
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"

namespace la {

// ------------------------------------------------------------------------------------------
// hermite: row = c_0..c_d [, lo, hi]   (a = d, b = 1 with linear tails)
// ------------------------------------------------------------------------------------------
struct Hermite {
  static int64_t width(const Cfg& c) { return c.a + 1 + (c.b ? 2 : 0); }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    T xb[W], e[W], h0[W], h1[W], f[W], df[W];
    for (int j = 0; j < n; ++j) {
      T v = x[j];
      if (cfg.b) v = std::min(std::max(v, p(d + 1, j)), p(d + 2, j));
      xb[j] = v;
      e[j] = x[j] - v;
      h0[j] = T(1);
      h1[j] = v;
      f[j] = p(0, j) + p(1, j) * v;
      df[j] = p(1, j);
    }
    for (int k = 1; k < d; ++k) {  // h_{k+1} = (x h_k - h_{k-1})/(k+1)
      const T r = T(1) / T(k + 1);
      for (int j = 0; j < n; ++j) {
        T h2 = xb[j] * (h1[j] * r) - h0[j] * r;  // scaled first: x h_k may overflow
        f[j] += p(k + 1, j) * h2;
        df[j] += p(k + 1, j) * h1[j];
        h0[j] = h1[j];
        h1[j] = h2;
      }
    }
    for (int j = 0; j < n; ++j) y[j] = cfg.b ? f[j] + df[j] * e[j] : f[j];
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    T xb[W], e[W], hm2[W], hm1[W], h[W], df[W], ddf[W], gg[W];
    for (int j = 0; j < n; ++j) {
      T v = x[j];
      if (cfg.b) v = std::min(std::max(v, p(d + 1, j)), p(d + 2, j));
      xb[j] = v;
      e[j] = x[j] - v;
      gg[j] = g[j];
      hm2[j] = T(0);
      hm1[j] = T(1);  // h_0
      h[j] = v;       // h_1
      df[j] = p(1, j);
      ddf[j] = T(0);
      acc(0, j) += gg[j];
      acc(1, j) += gg[j] * (v + e[j]);  // h_1 + h_0 e
    }
    for (int k = 2; k <= d; ++k) {  // h_k from h_{k-1}, h_{k-2}
      const T r = T(1) / T(k);
      for (int j = 0; j < n; ++j) {
        T hk = xb[j] * (h[j] * r) - hm1[j] * r;
        hm2[j] = hm1[j];
        hm1[j] = h[j];
        h[j] = hk;
        df[j] += p(k, j) * hm1[j];
        ddf[j] += p(k, j) * hm2[j];
        acc(k, j) += gg[j] * (hk + hm1[j] * e[j]);
      }
    }
    for (int j = 0; j < n; ++j) gx[j] = gg[j] * df[j];
    if (cfg.b) {  // d/dlo, d/dhi: P''(xb) (x - xb) on the side that clamps
      for (int j = 0; j < n; ++j) {
        T t = gg[j] * ddf[j] * e[j];
        acc(d + 1, j) += x[j] < p(d + 1, j) ? t : T(0);
        acc(d + 2, j) += x[j] > p(d + 2, j) ? t : T(0);
      }
    }
  }
};

}  // namespace la
