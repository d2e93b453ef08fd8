// Rational (Pade, safe denominator): f = s P(x) / (1 + |A(x)|) + t, A(x) = sum_{k=1..m} b_k x^k,
// evaluated scaled so that nothing overflows before f does
// (d|A|/dA at A = 0: the binding's convention, Cfg::ties)
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"

namespace la {

// ------------------------------------------------------------------------------------------
// rational: row = a_0..a_n, b_1..b_m, s, t   (a = n, b = m)
// ------------------------------------------------------------------------------------------
struct Rational {
  static int64_t width(const Cfg& c) { return c.a + 1 + c.b + 2; }

  // Scaled (learnact/functional/rational.py): S = max(1, |x|), r = 1/S, u = x r; the
  // homogeneous Horner sums N = S^-n P, B = S^-m A (and d/du) never overflow, and
  // f = s S^(n-m) N / D + t with D = r^m + |B|. Equal to the plain sums for |x| <= 1.
  template <typename T>
  static LA_INLINE void scaled(const T* x, int n, T* big, T* r, T* u) {
    for (int j = 0; j < n; ++j) {
      big[j] = std::max(std::abs(x[j]), T(1));
      r[j] = T(1) / big[j];
      // u = x r = x clipped to [-1, 1], computed so: r is subnormal from |x| = 2^126, and
      // XLA runs custom calls with subnormals flushed to 0 (u = 0 gave 0/0 there); NaN kept
      u[j] = std::min(std::max(x[j], T(-1)), T(1));
    }
  }

  // pw[i] = S^(i - R) for i <= 2R: r^R .. 1 .. S^R (R = max degree of the family, <= 32)
  static constexpr int R = 32;

  template <typename T>
  static LA_INLINE void powers(const T* big, const T* r, int n, int lo, int hi, T (*pw)[W]) {
    for (int j = 0; j < n; ++j) pw[R][j] = T(1);
    for (int i = 1; i <= hi; ++i)
      for (int j = 0; j < n; ++j) pw[R + i][j] = pw[R + i - 1][j] * big[j];
    for (int i = 1; i <= lo; ++i)
      for (int j = 0; j < n; ++j) pw[R - i][j] = pw[R - i + 1][j] * r[j];
  }

  // N, N' (d/du) over a_0..a_n; B, B' over b_1..b_m (B = u sum_k b_k u^(k-1) r^(m-k))
  template <typename T, class P>
  static LA_INLINE void sums(const T* u, const T* r, int n, const P& p, const Cfg& cfg, T* num,
                             T* dnum, T* a, T* da) {
    const int nn = (int)cfg.a, m = (int)cfg.b;
    T rk[W];
    for (int j = 0; j < n; ++j) {
      num[j] = p(nn, j);
      dnum[j] = T(0);
      a[j] = p(nn + m, j);
      da[j] = T(0);
      rk[j] = T(1);
    }
    for (int k = nn - 1; k >= 0; --k)
      for (int j = 0; j < n; ++j) {
        rk[j] *= r[j];
        dnum[j] = dnum[j] * u[j] + num[j];
        num[j] = num[j] * u[j] + p(k, j) * rk[j];
      }
    for (int j = 0; j < n; ++j) rk[j] = T(1);
    for (int k = m - 1; k >= 1; --k)
      for (int j = 0; j < n; ++j) {
        rk[j] *= r[j];
        da[j] = da[j] * u[j] + a[j];
        a[j] = a[j] * u[j] + p(nn + k, j) * rk[j];
      }
    for (int j = 0; j < n; ++j) {  // times u: B' = (sum) + u (sum)'
      da[j] = da[j] * u[j] + a[j];
      a[j] = a[j] * u[j];
    }
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int nn = (int)cfg.a, m = (int)cfg.b, s = nn + 1 + m;
    T big[W], r[W], u[W], num[W], dnum[W], a[W], da[W], pw[2 * R + 1][W];
    scaled(x, n, big, r, u);
    sums(u, r, n, p, cfg, num, dnum, a, da);
    const int e = nn - m;  // f = s S^e N / (r^m + |B|) + t
    powers(big, r, n, std::max(m, -e), std::max(e, 0), pw);
    for (int j = 0; j < n; ++j)
      y[j] = p(s, j) * (num[j] * pw[R + e][j] / (pw[R - m][j] + std::abs(a[j]))) + p(s + 1, j);
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                            const Cfg& cfg) {
    const int nn = (int)cfg.a, m = (int)cfg.b, s = nn + 1 + m;
    // exponents of S used: n-m, n-m-1, k-m (k = 0..n), n+k-2m (k = 1..m)
    const int lo = std::max({m, 2 * m - nn - 1, m - nn + 1}), hi = std::max(nn - m, 0);
    T big[W], r[W], u[W], num[W], dnum[W], a[W], da[W], wn[W], wd[W], uk[W];
    T pw[2 * R + 1][W];
    scaled(x, n, big, r, u);
    sums(u, r, n, p, cfg, num, dnum, a, da);
    powers(big, r, n, lo, hi, pw);
    const T tie = cfg.ties ? T(0) : T(1);
    for (int j = 0; j < n; ++j) {
      const T inv = T(1) / (pw[R - m][j] + std::abs(a[j]));
      const T sg = a[j] > T(0) ? T(1) : (a[j] < T(0) ? T(-1) : tie);
      wn[j] = g[j] * p(s, j) * inv;        // g s / D
      wd[j] = -wn[j] * num[j] * inv * sg;  // -g s sign(B) N / D^2
      gx[j] = (wn[j] * dnum[j] + wd[j] * da[j]) * pw[R + nn - m - 1][j];
      acc(s, j) += g[j] * num[j] * inv * pw[R + nn - m][j];
      acc(s + 1, j) += g[j];
      uk[j] = T(1);
    }
    for (int k = 0; k <= nn || k <= m; ++k) {  // dL/da_k = wn u^k S^(k-m),
      if (k > 0)                                // dL/db_k = wd u^k S^(n+k-2m)
        for (int j = 0; j < n; ++j) uk[j] *= u[j];
      if (k <= nn)
        for (int j = 0; j < n; ++j) acc(k, j) += wn[j] * uk[j] * pw[R + k - m][j];
      if (k >= 1 && k <= m)
        for (int j = 0; j < n; ++j) acc(nn + k, j) += wd[j] * uk[j] * pw[R + nn + k - 2 * m][j];
    }
  }
};

}  // namespace la
