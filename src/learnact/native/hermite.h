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
  static constexpr bool by_vector = false;  // common.h
  static int64_t width(const Cfg& c) { return c.a + 1 + (c.b ? 2 : 0); }

  // xb (clamped with tails) and e = x - xb
  template <typename T, class P>
  static LA_INLINE void clamp(V<T> xv, const P& p, int64_t j, const Cfg& cfg, V<T>& xb,
                             V<T>& e) {
    const int d = (int)cfg.a;
    xb = cfg.b ? vmin<T>(vmax<T>(xv, p(d + 1, j)), p(d + 2, j)) : xv;
    e = xv - xb;
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> xb[U], e[U], h0[U], h1[U], f[U], df[U];
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      clamp<T>(vload(x + j), p, j, cfg, xb[u], e[u]);
      h0[u] = vset(T(1));
      h1[u] = xb[u];
      df[u] = p(1, j);
      f[u] = p(0, j) + df[u] * xb[u];
    }
    for (int k = 1; k < d; ++k) {  // h_{k+1} = (x h_k - h_{k-1})/(k+1)
      const T r = T(1) / T(k + 1);
      for (int u = 0; u < U; ++u) {
        const V<T> h2 = xb[u] * (h1[u] * r) - h0[u] * r;  // scaled first: x h_k may overflow
        const V<T> c = p(k + 1, u * cfg.step);
        f[u] += c * h2;
        df[u] += c * h1[u];
        h0[u] = h1[u];
        h1[u] = h2;
      }
    }
    for (int u = 0; u < U; ++u) vstore(y + u * cfg.step, cfg.b ? f[u] + df[u] * e[u] : f[u]);
  }

  template <typename T, class P, class A>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const A& acc,
                            const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> xb[U], e[U], hm2[U], hm1[U], h[U], df[U], ddf[U], gg[U];
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      clamp<T>(vload(x + j), p, j, cfg, xb[u], e[u]);
      gg[u] = vload(g + j);
      hm2[u] = vset(T(0));
      hm1[u] = vset(T(1));  // h_0
      h[u] = xb[u];         // h_1
      df[u] = p(1, j);
      ddf[u] = vset(T(0));
    }
    acc.sum(0, [&](int u) { return gg[u]; });
    acc.sum(1, [&](int u) { return gg[u] * (xb[u] + e[u]); });  // h_1 + h_0 e
    for (int k = 2; k <= d; ++k) {  // h_k from h_{k-1}, h_{k-2}
      const T r = T(1) / T(k);
      for (int u = 0; u < U; ++u) {
        const int64_t j = u * cfg.step;
        const V<T> hk = xb[u] * (h[u] * r) - hm1[u] * r;
        hm2[u] = hm1[u];
        hm1[u] = h[u];
        h[u] = hk;
        const V<T> c = p(k, j);
        df[u] += c * hm1[u];
        ddf[u] += c * hm2[u];
      }
      acc.sum(k, [&](int u) { return gg[u] * (h[u] + hm1[u] * e[u]); });
    }
    for (int u = 0; u < U; ++u) vstore(gx + u * cfg.step, gg[u] * df[u]);
    if (cfg.b) {  // d/dlo, d/dhi: P''(xb) (x - xb) on the side that clamps
      V<T> t[U];
      for (int u = 0; u < U; ++u) t[u] = gg[u] * ddf[u] * e[u];
      const V<T> z = vset(T(0));
      acc.sum(d + 1, [&](int u) {
        return vsel<T>(vload(x + u * cfg.step) < p(d + 1, u * cfg.step), t[u], z);
      });
      acc.sum(d + 2, [&](int u) {
        return vsel<T>(vload(x + u * cfg.step) > p(d + 2, u * cfg.step), t[u], z);
      });
    }
  }
};

}  // namespace la
