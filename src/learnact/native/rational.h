// Rational (Pade, safe denominator): f = s P(x) / (1 + |A(x)|) + t, A(x) = sum_{k=1..m} b_k x^k
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

  template <typename T, class P>
  static LA_INLINE void values(const T* x, int n, const P& p, const Cfg& cfg, T* num, T* den) {
    const int nn = (int)cfg.a, m = (int)cfg.b;
    for (int j = 0; j < n; ++j) {
      num[j] = p(nn, j);
      den[j] = p(nn + m, j);
    }
    for (int k = nn - 1; k >= 0; --k)
      for (int j = 0; j < n; ++j) num[j] = num[j] * x[j] + p(k, j);
    for (int k = m - 1; k >= 1; --k)
      for (int j = 0; j < n; ++j) den[j] = den[j] * x[j] + p(nn + k, j);
    for (int j = 0; j < n; ++j) den[j] = den[j] * x[j];  // A(x)
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int s = (int)(cfg.a + 1 + cfg.b);
    T num[W], a[W];
    values(x, n, p, cfg, num, a);
    for (int j = 0; j < n; ++j) y[j] = p(s, j) * (num[j] / (T(1) + std::abs(a[j]))) + p(s + 1, j);
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int nn = (int)cfg.a, m = (int)cfg.b, s = nn + 1 + m;
    // P, P' and A, A' by Horner's rule (a_n..a_0; b_m..b_1, then times x)
    T xs[W], gs[W], num[W], dnum[W], a[W], da[W], wn[W], wd[W];
    for (int j = 0; j < n; ++j) {
      xs[j] = x[j];
      gs[j] = g[j];
      num[j] = p(nn, j);
      dnum[j] = T(0);
      a[j] = p(nn + m, j);
      da[j] = T(0);
    }
    for (int k = nn - 1; k >= 0; --k)
      for (int j = 0; j < n; ++j) {
        dnum[j] = dnum[j] * xs[j] + num[j];
        num[j] = num[j] * xs[j] + p(k, j);
      }
    for (int k = m - 1; k >= 1; --k)
      for (int j = 0; j < n; ++j) {
        da[j] = da[j] * xs[j] + a[j];
        a[j] = a[j] * xs[j] + p(nn + k, j);
      }
    for (int j = 0; j < n; ++j) {  // A = x B(x): A' = B + x B'
      da[j] = da[j] * xs[j] + a[j];
      a[j] = a[j] * xs[j];
    }
    const T tie = cfg.ties ? T(0) : T(1);
    for (int j = 0; j < n; ++j) {
      const T inv = T(1) / (T(1) + std::abs(a[j]));
      const T q = num[j] * inv;
      const T sg = a[j] > T(0) ? T(1) : (a[j] < T(0) ? T(-1) : tie);
      wn[j] = gs[j] * p(s, j) * inv;  // dL/dP
      wd[j] = -wn[j] * q * sg;        // dL/dA
      gx[j] = wn[j] * dnum[j] + wd[j] * da[j];
      acc(s, j) += gs[j] * q;
      acc(s + 1, j) += gs[j];
      acc(0, j) += wn[j];
    }
    for (int k = 1; k <= nn || k <= m; ++k)  // wn, wd times x^k into the sums
      for (int j = 0; j < n; ++j) {
        wn[j] *= xs[j];
        wd[j] *= xs[j];
        if (k <= nn) acc(k, j) += wn[j];
        if (k <= m) acc(nn + k, j) += wd[j];
      }
  }
};

}  // namespace la
