// Tropical (f = s max_k (m_k x + c_k) + t, first maximum on ties) and tropical rational
// (f = s (max_k (p_k x + a_k) - max_k (q_k x + b_k)) + t)
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"

namespace la {

// ------------------------------------------------------------------------------------------
// tropical envelopes: rows m_0..m_d, c_0..c_d, s, t (tropical) or p, a, q, b, s, t (rational)
// ------------------------------------------------------------------------------------------
// best, slope and index of the upper envelope's line
template <typename T, class P>
static LA_INLINE void envelope(const T* __restrict__ x, int n, const P& p, int d, int off,
                               T* __restrict__ best, T* __restrict__ slope,
                               int* __restrict__ arg) {
  for (int j = 0; j < n; ++j) {
    best[j] = p(off, j) * x[j] + p(off + d + 1, j);
    slope[j] = p(off, j);
    arg[j] = 0;
  }
  for (int k = 1; k <= d; ++k)
    for (int j = 0; j < n; ++j) {
      T v = p(off + k, j) * x[j] + p(off + d + 1 + k, j);
      // all three selected, then all three stored: GCC 12 leaves the loop scalar when each
      // select is stored as it is made (5x slower)
      T b = best[j], s = slope[j];
      int a = arg[j];
      const bool up = v > b;
      b = up ? v : b;
      s = up ? p(off + k, j) : s;
      a = up ? k : a;
      best[j] = b;
      slope[j] = s;
      arg[j] = a;
    }
}

template <typename T>
static LA_INLINE void envelope_grad(const T* x, const T* w, int n, const int* arg, int d,
                                    int off, const Acc<T>& acc) {
  for (int k = 0; k <= d; ++k)
    for (int j = 0; j < n; ++j) {
      T t = arg[j] == k ? w[j] : T(0);
      acc(off + k, j) += t * x[j];
      acc(off + d + 1 + k, j) += t;
    }
}

struct Tropical {
  static int64_t width(const Cfg& c) { return 2 * (c.a + 1) + 2; }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    T best[W], slope[W];
    int arg[W];
    envelope(x, n, p, d, 0, best, slope, arg);
    for (int j = 0; j < n; ++j) y[j] = p(2 * d + 2, j) * best[j] + p(2 * d + 3, j);
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    T best[W], slope[W], w[W];
    int arg[W];
    envelope(x, n, p, d, 0, best, slope, arg);
    for (int j = 0; j < n; ++j) {
      T s = p(2 * d + 2, j);
      w[j] = g[j] * s;
      gx[j] = w[j] * slope[j];
      acc(2 * d + 2, j) += g[j] * best[j];
      acc(2 * d + 3, j) += g[j];
    }
    envelope_grad(x, w, n, arg, d, 0, acc);
  }
};

struct TropicalRational {
  static int64_t width(const Cfg& c) { return 4 * (c.a + 1) + 2; }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a, q = 2 * d + 2, s = 4 * d + 4;
    T b1[W], s1[W], b2[W], s2[W];
    int a1[W], a2[W];
    envelope(x, n, p, d, 0, b1, s1, a1);
    envelope(x, n, p, d, q, b2, s2, a2);
    for (int j = 0; j < n; ++j) y[j] = p(s, j) * (b1[j] - b2[j]) + p(s + 1, j);
  }

  template <typename T, class P>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a, q = 2 * d + 2, s = 4 * d + 4;
    T b1[W], s1[W], b2[W], s2[W], w[W], wn[W];
    int a1[W], a2[W];
    envelope(x, n, p, d, 0, b1, s1, a1);
    envelope(x, n, p, d, q, b2, s2, a2);
    for (int j = 0; j < n; ++j) {
      w[j] = g[j] * p(s, j);
      wn[j] = -w[j];
      gx[j] = w[j] * (s1[j] - s2[j]);
      acc(s, j) += g[j] * (b1[j] - b2[j]);
      acc(s + 1, j) += g[j];
    }
    envelope_grad(x, w, n, a1, d, 0, acc);
    envelope_grad(x, wn, n, a2, d, q, acc);
  }
};

}  // namespace la
