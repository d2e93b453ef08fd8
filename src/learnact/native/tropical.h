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
// best value, slope and index of the upper envelope's line (rows off.. of the table)
template <typename T, class P>
static LA_INLINE void envelope(const V<T>* xv, const P& p, int d, int off, const Cfg& cfg,
                               V<T>* best, V<T>* slope, VI<T>* arg) {
  for (int u = 0; u < U; ++u) {
    const int64_t j = u * cfg.step;
    slope[u] = p(off, j);
    best[u] = slope[u] * xv[u] + p(off + d + 1, j);
    arg[u] = VI<T>{};
  }
  for (int k = 1; k <= d; ++k)
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      const V<T> m = p(off + k, j), v = m * xv[u] + p(off + d + 1 + k, j);
      const VI<T> up = v > best[u];  // strict: the first maximum on ties
      best[u] = vsel<T>(up, v, best[u]);
      slope[u] = vsel<T>(up, m, slope[u]);
      arg[u] = up ? VI<T>{} + k : arg[u];
    }
}

// the envelope's parameter gradients: w to the chosen line's slope (times x) and intercept
template <typename T, class A>
static LA_INLINE void envelope_grad(const V<T>* xv, const V<T>* w, const VI<T>* arg, int d,
                                    int off, const A& acc) {
  for (int k = 0; k <= d; ++k) {
    V<T> t[U];
    for (int u = 0; u < U; ++u) t[u] = vsel<T>(arg[u] == k, w[u], vset(T(0)));
    acc.sum(off + k, [&](int u) { return t[u] * xv[u]; });
    acc.sum(off + d + 1 + k, [&](int u) { return t[u]; });
  }
}

struct Tropical {
  static constexpr bool by_vector = false;  // common.h
  static int64_t width(const Cfg& c) { return 2 * (c.a + 1) + 2; }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> xv[U], best[U], slope[U];
    VI<T> arg[U];
    for (int u = 0; u < U; ++u) xv[u] = vload(x + u * cfg.step);
    envelope<T>(xv, p, d, 0, cfg, best, slope, arg);
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      vstore(y + j, p(2 * d + 2, j) * best[u] + p(2 * d + 3, j));
    }
  }

  template <typename T, class P, class A>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const A& acc,
                            const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> xv[U], best[U], slope[U], w[U];
    VI<T> arg[U];
    for (int u = 0; u < U; ++u) xv[u] = vload(x + u * cfg.step);
    envelope<T>(xv, p, d, 0, cfg, best, slope, arg);
    V<T> gg[U];
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      gg[u] = vload(g + j);
      w[u] = gg[u] * p(2 * d + 2, j);
      vstore(gx + j, w[u] * slope[u]);
    }
    acc.sum(2 * d + 2, [&](int u) { return gg[u] * best[u]; });
    acc.sum(2 * d + 3, [&](int u) { return gg[u]; });
    envelope_grad<T>(xv, w, arg, d, 0, acc);
  }
};

struct TropicalRational {
  static constexpr bool by_vector = false;  // common.h
  static int64_t width(const Cfg& c) { return 4 * (c.a + 1) + 2; }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a, q = 2 * d + 2, s = 4 * d + 4;
    V<T> xv[U], b1[U], s1[U], b2[U], s2[U];
    VI<T> a1[U], a2[U];
    for (int u = 0; u < U; ++u) xv[u] = vload(x + u * cfg.step);
    envelope<T>(xv, p, d, 0, cfg, b1, s1, a1);
    envelope<T>(xv, p, d, q, cfg, b2, s2, a2);
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      vstore(y + j, p(s, j) * (b1[u] - b2[u]) + p(s + 1, j));
    }
  }

  template <typename T, class P, class A>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const A& acc,
                            const Cfg& cfg) {
    const int d = (int)cfg.a, q = 2 * d + 2, s = 4 * d + 4;
    V<T> xv[U], b1[U], s1[U], b2[U], s2[U], w[U], wn[U];
    VI<T> a1[U], a2[U];
    for (int u = 0; u < U; ++u) xv[u] = vload(x + u * cfg.step);
    envelope<T>(xv, p, d, 0, cfg, b1, s1, a1);
    envelope<T>(xv, p, d, q, cfg, b2, s2, a2);
    V<T> gg[U];
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      gg[u] = vload(g + j);
      w[u] = gg[u] * p(s, j);
      wn[u] = -w[u];
      vstore(gx + j, w[u] * (s1[u] - s2[u]));
    }
    acc.sum(s, [&](int u) { return gg[u] * (b1[u] - b2[u]); });
    acc.sum(s + 1, [&](int u) { return gg[u]; });
    envelope_grad<T>(xv, w, a1, d, 0, acc);
    envelope_grad<T>(xv, wn, a2, d, q, acc);
  }
};

}  // namespace la
